# Faster R-CNN R50-C4 on VOC07+12 trainval, 24k iterations, steps 18k/22k,
# min size 480-800 (the DenseCL/SoCo/CrossCL VOC protocol): SyncBN, no frozen
# stages, RGB with ImageNet mean/std, pretrained backbone.
#   --cfg-options model.backbone.init_cfg.checkpoint=crosscl_mmdet.pth \
#                 model.roi_head.shared_head.init_cfg.checkpoint=crosscl_mmdet.pth
_base_ = 'mmdet::pascal_voc/faster-rcnn_r50-caffe-c4_ms-18k_voc0712.py'
custom_imports = dict(imports=['crosscl_mm'], allow_failed_imports=False)

pretrained = 'crosscl_mmdet.pth'
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
    backbone=dict(
        frozen_stages=-1, norm_cfg=norm_cfg, norm_eval=False, style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    roi_head=dict(
        # res5 is the C4 model's RoI head: it loads the pretrained layer4.
        shared_head=dict(
            norm_cfg=norm_cfg, norm_eval=False, style='pytorch',
            init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.'))))

max_iter = 24000
train_cfg = dict(max_iters=max_iter, val_interval=4000)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=100),
    dict(type='MultiStepLR', begin=0, end=max_iter, by_epoch=False, milestones=[18000, 22000],
         gamma=0.1)
]
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=4000))
# AP (IoU 0.50:0.95), AP50 and AP75, as the seed benchmarks report them.
val_evaluator = dict(type='VOCMetric', metric='mAP', eval_mode='area',
                     iou_thrs=[0.5 + 0.05 * i for i in range(10)])
test_evaluator = val_evaluator
