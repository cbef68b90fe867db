# FCOS R50-FPN on COCO, 90k iterations: DenseCL's AdelaiDet protocol
# (_base_/fcos_r50-fpn_syncbn_gn-head_90k_coco.py) from a MoCo v2 backbone (the
# DenseCL README's MoCo-v2 row; a MoCo v2 checkpoint's module.encoder_q).
#   python tools/model_converters/convert_pretrained.py moco_v2_200ep.pth.tar \
#       mocov2_mmdet.pth --to mmdet
#   bash tools/dist_train.sh \
#       configs/benchmarks/mmdetection/fcos_r50-fpn_syncbn_gn-head_mocov2_90k_coco.py 8
_base_ = '_base_/fcos_r50-fpn_syncbn_gn-head_90k_coco.py'

pretrained = 'mocov2_mmdet.pth'
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')))
