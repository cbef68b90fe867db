# Mask R-CNN R50-FPN on COCO with mmdet's standard 2x recipe (24 epochs, single
# scale), from a CrossCL checkpoint, backbone and FPN. The paper's protocol is
# mask-rcnn_r50-fpn_syncbn-all_crosscl-fpn_ms-180k_coco.py.
#   python tools/model_converters/convert_pretrained.py epoch_200.pth crosscl_mmdet.pth \
#       --to mmdet --with-fpn
#   bash tools/benchmarks/mmdetection/mim_dist_train_coco.sh <this file> crosscl_mmdet.pth 8
_base_ = '_base_/mask-rcnn_r50-fpn_syncbn-all_2x_coco.py'

pretrained = 'crosscl_mmdet.pth'
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    # CrossCL pretrains the C3-C5 laterals and the P3/P4 outputs; the C2 lateral
    # and the P2/P5 outputs keep the protocol's init. With SyncBN in the FPN its
    # convs have no bias, so the pretrained conv biases are not used (as in the
    # reference's detectron2 runs).
    neck=dict(init_cfg=[dict(type='Caffe2Xavier', layer='Conv2d'),
                        dict(type='Pretrained', checkpoint=pretrained, prefix='neck.')]))
