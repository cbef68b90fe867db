# Mask R-CNN R50-FPN on COCO with mmdet's standard 1x recipe (12 epochs, single
# scale), from the backbone of a CrossCL checkpoint only.
#   python tools/model_converters/convert_pretrained.py epoch_200.pth crosscl_mmdet.pth --to mmdet
#   bash tools/benchmarks/mmdetection/mim_dist_train_coco.sh <this file> crosscl_mmdet.pth 8
_base_ = '_base_/mask-rcnn_r50-fpn_syncbn-all_1x_coco.py'

pretrained = 'crosscl_mmdet.pth'
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')))
