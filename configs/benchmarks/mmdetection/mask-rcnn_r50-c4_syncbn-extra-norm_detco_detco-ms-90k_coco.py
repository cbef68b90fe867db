# DetCo's COCO Mask R-CNN R50-C4 protocol, 90k iterations, from a DetCo
# backbone (DetCo-200ep, its README's release);
# the res5 RoI head starts from the pretrained layer4.
#   python tools/model_converters/convert_pretrained.py epoch_200.pth (or the released .pth) detco_mmdet.pth --to mmdet
#   python tools/benchmarks/transfer.py detco_mmdet.pth --protocol detco_mask-rcnn_r50-c4_90k_coco
_base_ = '_base_/mask-rcnn_r50-c4_syncbn-extra-norm_detco-ms-90k_coco.py'

pretrained = 'detco_mmdet.pth'
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    roi_head=dict(shared_head=dict(
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.'))))
