_base_ = './detco_r50_200e_in1k.py'
# DetCo-800ep (paper Table 9 / Fig. 3).
param_scheduler = [dict(type='CosineAnnealingLR', T_max=800, by_epoch=True, begin=0, end=800)]
train_cfg = dict(max_epochs=800)
