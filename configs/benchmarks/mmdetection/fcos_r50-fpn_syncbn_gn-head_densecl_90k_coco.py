# FCOS R50-FPN on COCO, 90k iterations: DenseCL's AdelaiDet protocol
# (_base_/fcos_r50-fpn_syncbn_gn-head_90k_coco.py) from a DenseCL backbone (the
# released densecl_r50_imagenet_200ep.pth: a state_dict in torchvision names).
#   python tools/model_converters/convert_pretrained.py densecl_r50_imagenet_200ep.pth \
#       densecl_mmdet.pth --to mmdet
#   bash tools/dist_train.sh \
#       configs/benchmarks/mmdetection/fcos_r50-fpn_syncbn_gn-head_densecl_90k_coco.py 8
_base_ = '_base_/fcos_r50-fpn_syncbn_gn-head_90k_coco.py'

pretrained = 'densecl_mmdet.pth'
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')))
