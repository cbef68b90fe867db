# mmdet's standard 2x recipe: 24 epochs, steps at epochs 16 and 22 (schedule_2x.py);
# otherwise as the 1x recipe.
_base_ = './mask-rcnn_r50-fpn_syncbn-all_1x_coco.py'

max_epochs = 24
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs, milestones=[16, 22],
         gamma=0.1),
]
