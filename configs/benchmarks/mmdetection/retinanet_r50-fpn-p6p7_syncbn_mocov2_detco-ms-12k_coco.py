# DetCo's COCO RetinaNet R50-FPN protocol, 12k iterations, from a MoCo v2
# backbone (200 epochs, as in DetCo's tables);
# the FPN and heads start from their init.
#   python tools/model_converters/convert_pretrained.py moco_v2_200ep_pretrain.pth.tar mocov2_mmdet.pth --to mmdet
#   python tools/benchmarks/transfer.py mocov2_mmdet.pth --protocol detco_retinanet_r50-fpn_12k_coco
_base_ = '_base_/retinanet_r50-fpn-p6p7_syncbn_detco-ms-12k_coco.py'

pretrained = 'mocov2_mmdet.pth'
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')))
