#!/usr/bin/env bash
# Fine-tune Mask R-CNN R50-FPN on COCO from a converted CrossCL or SoCo checkpoint.
#   bash tools/benchmarks/mmdetection/mim_dist_train_coco.sh CONFIG CKPT GPUS [train.py args]
# CONFIG: one of configs/benchmarks/mmdetection/mask-rcnn_*. The papers' protocol
# (docs/transfer_protocol.md) is *_ms-90k_coco.py (detectron2's 1x) and
# *_ms-180k_coco.py (2x); *_1x_coco.py / *_2x_coco.py follow mmdet's model-zoo
# recipe. *_crosscl-fpn_* also load the FPN from CKPT, *_soco_* the FPN and the box head.
# CKPT: output of tools/model_converters/convert_pretrained.py --to mmdet
# [--with-fpn] [--with-box-head].
set -euo pipefail
CONFIG=$1
CKPT=$2
GPUS=$3
WORK_DIR=${WORK_DIR:-work_dirs/benchmarks/$(basename "${CONFIG%.*}")}
OPTIONS=(model.backbone.init_cfg.checkpoint="$CKPT")
if [[ "$CONFIG" == *crosscl-fpn* ]]; then
    OPTIONS+=(model.neck.init_cfg.1.checkpoint="$CKPT")
elif [[ "$CONFIG" == *_soco_* ]]; then  # FPN and box head pretrained (--with-fpn --with-box-head)
    OPTIONS+=(model.neck.init_cfg.0.checkpoint="$CKPT"
              model.roi_head.bbox_head.init_cfg.2.checkpoint="$CKPT")
fi
PORT=${PORT:-29500} mim train mmdet "$CONFIG" --launcher pytorch --gpus "$GPUS" \
    --work-dir "$WORK_DIR" --cfg-options "${OPTIONS[@]}" "${@:4}"
