# DetCo's COCO Mask R-CNN R50-FPN protocol, 12k iterations, from a DetCo
# backbone (DetCo-200ep, its README's release);
# the FPN and heads start from their init.
#   python tools/model_converters/convert_pretrained.py epoch_200.pth (or the released .pth) detco_mmdet.pth --to mmdet
#   python tools/benchmarks/transfer.py detco_mmdet.pth --protocol detco_mask-rcnn_r50-fpn_12k_coco
_base_ = '_base_/mask-rcnn_r50-fpn_syncbn_detco-ms-12k_coco.py'

pretrained = 'detco_mmdet.pth'
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')))
