_base_ = [
    '_base_/models/crosscl_r50fpn.py',
    '_base_/datasets/coco_crosscl.py',
    '_base_/schedules/sgd_coslr-200e.py',
    '_base_/default_runtime.py',
]
# COCO train2017, 800 epochs at lr 0.3 (reference: sh/crosscl_800e_coco.sh).
optim_wrapper = dict(optimizer=dict(lr=0.3))
param_scheduler = [dict(type='CosineAnnealingLR', T_max=800, by_epoch=True, begin=0, end=800)]
train_cfg = dict(max_epochs=800)
