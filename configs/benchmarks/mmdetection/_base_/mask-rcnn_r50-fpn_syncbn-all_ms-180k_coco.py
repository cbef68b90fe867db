# The 90k protocol with the reference's 180k schedule (detectron2's "2x",
# yanjk3/CrossCL detection/configs/CrossCL-MaskRCNN-FPN-COCO-2x.yaml):
# SOLVER.MAX_ITER 180000, STEPS (120000, 160000).
_base_ = './mask-rcnn_r50-fpn_syncbn-all_ms-90k_coco.py'

max_iters = 180000
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    # LinearLR reaches its end factor at `end - 1`: end=1000+1 gives detectron2's
    # factor f + (1 - f) * i / 1000 at every iteration i.
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1001),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[120000, 160000], gamma=0.1),
]
