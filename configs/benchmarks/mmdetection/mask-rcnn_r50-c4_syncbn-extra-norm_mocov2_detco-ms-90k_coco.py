# DetCo's COCO Mask R-CNN R50-C4 protocol, 90k iterations, from a MoCo v2
# backbone (200 epochs, as in DetCo's tables);
# the res5 RoI head starts from the pretrained layer4.
#   python tools/model_converters/convert_pretrained.py moco_v2_200ep_pretrain.pth.tar mocov2_mmdet.pth --to mmdet
#   python tools/benchmarks/transfer.py mocov2_mmdet.pth --protocol detco_mask-rcnn_r50-c4_90k_coco
_base_ = '_base_/mask-rcnn_r50-c4_syncbn-extra-norm_detco-ms-90k_coco.py'

pretrained = 'mocov2_mmdet.pth'
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    roi_head=dict(shared_head=dict(
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.'))))
