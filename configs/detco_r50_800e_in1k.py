_base_ = './detco_r50_200e_in1k.py'
# Targets DetCo-800ep (arXiv v1 VOC07+12 Faster R-CNN C4 table: 58.2 AP / 82.7 AP50 /
# 65.0 AP75; the VOC curve of Fig. 3), plain DetCo's recipe for 800 epochs.
param_scheduler = [dict(type='CosineAnnealingLR', T_max=800, by_epoch=True, begin=0, end=800)]
train_cfg = dict(max_epochs=800)
