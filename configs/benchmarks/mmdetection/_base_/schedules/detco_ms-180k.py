# DetCo's 180k-iteration schedule at 16 images (xieenze/DetCo
# benchmarks/detection/configs/coco_R_50_*_2x_moco.yaml, detectron2 v0.3 defaults):
# SOLVER.MAX_ITER 180000, STEPS (120000, 160000), GAMMA 0.1; WARMUP_METHOD "linear",
# WARMUP_FACTOR 0.001, WARMUP_ITERS 1000 (detectron2's defaults, which the
# YAMLs keep, the 12k one included); TEST.EVAL_PERIOD 0: one evaluation, at the end.
max_iters = 180000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    # LinearLR reaches its end factor at `end - 1`: end=1000+1 gives detectron2's
    # factor f + (1 - f) * i / 1000 at every iteration i.
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1001),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters, milestones=[120000, 160000],
         gamma=0.1),
]
