# Mask R-CNN R50-FPN on COCO, 90k iterations (detectron2's 1x): the CrossCL
# reference protocol (_base_/mask-rcnn_r50-fpn_syncbn-all_ms-90k_coco.py) from a
# CrossCL checkpoint, backbone and FPN (CrossCL paper, Table 2 COCO 1x rows).
#   python tools/model_converters/convert_pretrained.py epoch_200.pth crosscl_mmdet.pth \
#       --to mmdet --with-fpn
#   bash tools/benchmarks/mmdetection/mim_dist_train_coco.sh <this file> crosscl_mmdet.pth 8
_base_ = '_base_/mask-rcnn_r50-fpn_syncbn-all_ms-90k_coco.py'

pretrained = 'crosscl_mmdet.pth'
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    # CrossCL pretrains the C3-C5 laterals and the P3/P4 outputs; the C2 lateral
    # and the P2/P5 outputs keep the protocol's init. With SyncBN in the FPN its
    # convs have no bias, so the pretrained conv biases are not used (as in the
    # reference's detectron2 runs).
    neck=dict(init_cfg=[dict(type='Caffe2Xavier', layer='Conv2d'),
                        dict(type='Pretrained', checkpoint=pretrained, prefix='neck.')]))
