# The solver of DenseCL's AdelaiDet protocols (aim-uofa/AdelaiDet configs/DenseCL/
# {FCOS,SOLOv2}_R50_1x*.yaml @ 5ebcac9, over configs/FCOS-Detection/Base-FCOS.yaml
# and configs/SOLOv2/Base-SOLOv2.yaml), as detectron2 v0.2 runs it: AdelaiDet's
# README at that commit pins detectron2 commit 9eb4831, five days before the v0.2
# tag and identical to it in config/defaults.py and solver/. Comments give the
# detectron2 key; docs/transfer_protocol.md has the side-by-side table.
# SOLOv2's base overrides the warmup factor (its YAML sets WARMUP_FACTOR 0.01).
_base_ = 'mmdet::_base_/default_runtime.py'
custom_imports = dict(imports=['crosscl_mm'], allow_failed_imports=False)

# SOLVER.MAX_ITER 90000; TEST.EVAL_PERIOD 0: one evaluation, at the end.
max_iters = 90000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# SOLVER.WARMUP_METHOD "linear", WARMUP_FACTOR 0.001 (default), WARMUP_ITERS 1000
# (default); STEPS (60000, 80000), GAMMA 0.1. detectron2's WarmupMultiStepLR
# multiplies the lr of iteration i < 1000 by 0.001 + 0.999 * i / 1000; mmengine's
# LinearLR reaches its end factor one step before `end`, so end=1001 gives
# detectron2's factor at every iteration (tests/test_adelaidet_pieces.py).
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1001),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters, milestones=[60000, 80000],
         gamma=0.1),
]
# SOLVER.BASE_LR 0.01, MOMENTUM 0.9, WEIGHT_DECAY 1e-4, WEIGHT_DECAY_NORM 0.0,
# WEIGHT_DECAY_BIAS 1e-4 and BIAS_LR_FACTOR 1.0 (defaults): detectron2 v0.2's
# build_optimizer decays norm layers' weights and biases by 0 and every other
# parameter by 1e-4. SOLVER.CLIP_GRADIENTS.ENABLED False: no gradient clipping
# (mmdet's own FCOS and SOLOv2 configs clip at norm 35).
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='crosscl_mm.Detectron2OptimWrapperConstructor',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(detectron2_version='v0.2', weight_decay_norm=0.0))
# TEST.PRECISE_BN.ENABLED True, NUM_ITER 200 (default): BN statistics re-estimated
# on 200 training batches before the evaluation.
custom_hooks = [dict(type='crosscl_mm.DetPreciseBNHook', num_iters=200)]
# SOLVER.CHECKPOINT_PERIOD 5000.
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=5000, max_keep_ckpts=3))
log_processor = dict(by_epoch=False)
# SOLVER.IMS_PER_BATCH 16 (8 GPUs x 2 in AdelaiDet's README).
auto_scale_lr = dict(enable=False, base_batch_size=16)
