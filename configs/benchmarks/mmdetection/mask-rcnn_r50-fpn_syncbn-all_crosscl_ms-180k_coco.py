# Mask R-CNN R50-FPN on COCO, 180k iterations: the CrossCL reference protocol
# from the backbone of a CrossCL checkpoint only.
#   python tools/model_converters/convert_pretrained.py epoch_200.pth crosscl_mmdet.pth --to mmdet
#   bash tools/benchmarks/mmdetection/mim_dist_train_coco.sh <this file> crosscl_mmdet.pth 8
_base_ = '_base_/mask-rcnn_r50-fpn_syncbn-all_ms-180k_coco.py'

pretrained = 'crosscl_mmdet.pth'
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')))
