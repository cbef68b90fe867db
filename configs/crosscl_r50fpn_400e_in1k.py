_base_ = './crosscl_r50fpn_200e_in1k.py'
param_scheduler = [dict(type='CosineAnnealingLR', T_max=400, by_epoch=True, begin=0, end=400)]
train_cfg = dict(max_epochs=400)
