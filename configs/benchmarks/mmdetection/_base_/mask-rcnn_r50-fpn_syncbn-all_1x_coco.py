# mmdet's standard 1x recipe for comparison with mmdet's model zoo: 12 epochs,
# steps at epochs 8 and 11, 500 warmup iterations, single-scale training at
# (1333, 800) (mmdet::_base_/schedules/schedule_1x.py, datasets/coco_instance.py),
# with the reference protocol's model, optimizer (lr 0.02, weight decay 2.5e-5,
# none on norm layers) and PreciseBN. For the paper's numbers use the ms-90k
# protocol instead.
_base_ = './mask-rcnn_r50-fpn_syncbn-all_ms-90k_coco.py'

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(sampler=dict(type='DefaultSampler', shuffle=True),
                        dataset=dict(pipeline=train_pipeline))

max_epochs = 12
train_cfg = dict(_delete_=True, type='EpochBasedTrainLoop', max_epochs=max_epochs,
                 val_interval=1)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs, milestones=[8, 11],
         gamma=0.1),
]
default_hooks = dict(checkpoint=dict(by_epoch=True, interval=1, max_keep_ckpts=3))
log_processor = dict(by_epoch=True)
