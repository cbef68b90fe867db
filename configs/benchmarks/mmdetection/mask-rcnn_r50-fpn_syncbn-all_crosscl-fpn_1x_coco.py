# Mask R-CNN R50-FPN 1x on COCO with the CrossCL fine-tuning protocol (the
# reference's detectron2 configs, after SoCo): SyncBN in backbone, FPN and heads,
# 4conv-1fc box head, weight decay 2.5e-5, RGB input with ImageNet mean/std as in
# pretraining, no frozen stages. Backbone AND FPN come from the pretrained model.
#
# Convert first, then point both init_cfgs at the file:
#   python tools/model_converters/convert_pretrained.py epoch_200.pth crosscl_mmdet.pth \
#       --to mmdet --with-fpn
#   bash tools/dist_train.sh configs/benchmarks/mmdetection/<this file> 8 --cfg-options \
#       model.backbone.init_cfg.checkpoint=crosscl_mmdet.pth \
#       model.neck.init_cfg.1.checkpoint=crosscl_mmdet.pth
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['crosscl_mm'], allow_failed_imports=False)

pretrained = 'crosscl_mmdet.pth'
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
    backbone=dict(
        frozen_stages=-1, norm_cfg=norm_cfg, norm_eval=False,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(
        norm_cfg=norm_cfg,
        # mmdet's own init for what CrossCL does not pretrain (C2 level, P5 output).
        init_cfg=[dict(type='Xavier', layer='Conv2d', distribution='uniform'),
                  dict(type='Pretrained', checkpoint=pretrained, prefix='neck.')]),
    roi_head=dict(
        bbox_head=dict(type='Shared4Conv1FCBBoxHead', conv_out_channels=256, norm_cfg=norm_cfg),
        mask_head=dict(norm_cfg=norm_cfg)))
optim_wrapper = dict(optimizer=dict(weight_decay=2.5e-5))
