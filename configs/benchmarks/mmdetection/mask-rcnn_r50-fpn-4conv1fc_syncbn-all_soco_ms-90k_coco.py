# Mask R-CNN R50-FPN on COCO, 90k iterations (detectron2's 1x), with SoCo's transfer
# (official detectron2_configs/SoCo_FPN_400ep.yaml over R_50_FPN_1x.yaml): the
# reference protocol of _base_/mask-rcnn_r50-fpn_syncbn-all_ms-90k_coco.py (the same as
# CrossCL's: docs/transfer_protocol.md), with the backbone, the whole FPN and the box
# head's 4 convs and fc from the SoCo checkpoint.
#
#   python tools/model_converters/convert_pretrained.py epoch_400.pth soco_mmdet.pth \
#       --to mmdet --with-fpn --with-box-head
#   bash tools/dist_train.sh configs/benchmarks/mmdetection/<this file> 8 --cfg-options \
#       model.backbone.init_cfg.checkpoint=soco_mmdet.pth \
#       model.neck.init_cfg.0.checkpoint=soco_mmdet.pth \
#       model.roi_head.bbox_head.init_cfg.2.checkpoint=soco_mmdet.pth
_base_ = '_base_/mask-rcnn_r50-fpn_syncbn-all_ms-90k_coco.py'

pretrained = 'soco_mmdet.pth'
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(init_cfg=[dict(type='Pretrained', checkpoint=pretrained, prefix='neck.')]),
    roi_head=dict(bbox_head=dict(
        type='Shared4Conv1FCBBoxHead', conv_out_channels=256, fc_out_channels=1024,
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        # mmdet's init of the classifier and regressor; the rest is pretrained.
        init_cfg=[dict(type='Normal', std=0.01, override=dict(name='fc_cls')),
                  dict(type='Normal', std=0.001, override=dict(name='fc_reg')),
                  dict(type='Pretrained', checkpoint=pretrained, prefix='roi_head.bbox_head.')])))
