# Mask R-CNN R50-FPN on COCO, 90k iterations, from a DetCo backbone, under the
# same protocol as every method here (CrossCL's/SoCo's detectron2 recipe), so
# the numbers compare. DetCo's own COCO configs (xieenze/DetCo
# benchmarks/detection/configs/coco_R_50_FPN_1x_moco.yaml, MoCo's) differ in
# three places: a 2fc box head and a mask head without norm, weight decay 1e-4
# (docs/transfer_protocol.md).
#   python tools/model_converters/convert_pretrained.py epoch_200.pth detco_mmdet.pth --to mmdet
#   bash tools/benchmarks/mmdetection/mim_dist_train_coco.sh <this file> detco_mmdet.pth 8
_base_ = '_base_/mask-rcnn_r50-fpn_syncbn-all_ms-90k_coco.py'

pretrained = 'detco_mmdet.pth'
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')))
