_base_ = './crosscl_r50fpn_800e_coco.py'
# Multi-scale training: every 1% of the epochs one view size for all ranks.
custom_hooks = [dict(type='MultiScaleTrainingHook', sizes=(224, 384, 480), fraction=0.01)]
