#!/usr/bin/env bash
# Fine-tune Faster R-CNN R50-C4 on VOC07+12 (the reference's 24k-iteration
# protocol, docs/transfer_protocol.md) through our dist_train.sh.
#   SEED=0 bash tools/benchmarks/mmdetection/dist_train_voc.sh CKPT GPUS [key=value ...]
# CKPT: tools/model_converters/convert_pretrained.py ... --to mmdet; it
# initialises the backbone and the res5 RoI head. CONFIG selects another leaf
# of the VOC protocol (another pretraining method, or an R101-C4 leaf such as
# faster-rcnn_r101-c4_syncbn_regioncl-d_24k_voc0712.py); arguments after GPUS
# are appended to --cfg-options.
set -euo pipefail
CKPT=$1
GPUS=$2
SEED=${SEED:-0}
CONFIG=${CONFIG:-configs/benchmarks/mmdetection/faster-rcnn_r50-c4_syncbn_crosscl_24k_voc0712.py}
WORK_DIR=${WORK_DIR:-work_dirs/benchmarks/voc_seed${SEED}}
bash "$(dirname "$0")/../../dist_train.sh" "$CONFIG" "$GPUS" --work-dir "$WORK_DIR" \
    --cfg-options model.backbone.init_cfg.checkpoint="$CKPT" \
    model.roi_head.shared_head.init_cfg.checkpoint="$CKPT" randomness.seed="$SEED" "${@:3}"
