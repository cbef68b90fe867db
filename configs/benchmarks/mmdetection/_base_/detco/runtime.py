# What DetCo's three COCO protocols share (xieenze/DetCo
# benchmarks/detection/configs/*_moco.yaml over detectron2 v0.3's defaults):
# optimizer, Precise BN, checkpoints. The detector files of this folder add
# the model and data, ../schedules/detco_ms-*.py the schedule.
_base_ = 'mmdet::_base_/default_runtime.py'
custom_imports = dict(imports=['crosscl_mm'], allow_failed_imports=False)

# SOLVER.BASE_LR 0.02 (RetinaNet: 0.01), MOMENTUM 0.9, WEIGHT_DECAY 1e-4,
# WEIGHT_DECAY_NORM 0 and WEIGHT_DECAY_BIAS 1e-4 (defaults.py); detectron2
# v0.3's build_optimizer gives norm layers WEIGHT_DECAY_NORM and the other
# biases WEIGHT_DECAY_BIAS (DetCo's last commit, 2021-02-23, predates v0.4).
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='crosscl_mm.Detectron2OptimWrapperConstructor',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(detectron2_version='v0.3', weight_decay_norm=0.0))
# TEST.PRECISE_BN.ENABLED True, NUM_ITER 200.
custom_hooks = [dict(type='crosscl_mm.DetPreciseBNHook', num_iters=200)]
# SOLVER.CHECKPOINT_PERIOD 5000.
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=5000, max_keep_ckpts=3))
log_processor = dict(by_epoch=False)
# SOLVER.IMS_PER_BATCH 16 = 8 GPUs x 2.
auto_scale_lr = dict(base_batch_size=16)
