# `make demo`: Mask R-CNN R50-FPN fine-tuned on the generated shapes-on-photos
# COCO dataset: the CrossCL protocol of the 1x config (4conv-1fc box head, norm
# layers everywhere, RGB input with ImageNet statistics, no frozen stages) sized for a
# 2-core CPU. Every setting the demo changes is here, explicitly:
#  - BN instead of SyncBN (one process);
#  - 256x192 images, anchors of scale 4 (the shapes have radii of 15-38 px);
#  - narrow heads: the box head's 4 convs 64 channels and its fc 256 (the protocol:
#    256 / 1024), the mask head's 4 convs 64 channels (256). With the protocol's widths
#    the two heads were 32 of the 38 GFLOPs of one image's forward pass; SoCo's demo
#    pretrains its box head at these widths so that it transfers (--with-box-head);
#  - 32 sampled RoIs per image in training (COCO: 512), 50 proposals and at most 20
#    detections per image in testing (COCO: 1000 and 100; an image has at most 4 shapes);
#  - 8 epochs of 16 iterations of 2 images, lr 0.01, warmup 10 iterations, step at epoch 7
#    (4 epochs ended with no detection from any initialisation).
_base_ = '../benchmarks/mmdetection/mask-rcnn_r50-fpn_syncbn-all_crosscl-fpn_1x_coco.py'

data_root = 'work_dirs/demo/shapes/'
classes = ('circle', 'rectangle', 'triangle')
norm_cfg = dict(type='BN', requires_grad=True)
box_head_conv_channels = 64
box_head_fc_channels = 256
mask_head_conv_channels = 64
model = dict(
    backbone=dict(norm_cfg=norm_cfg, init_cfg=None),
    neck=dict(norm_cfg=norm_cfg, init_cfg=dict(_delete_=True, type='Xavier', layer='Conv2d',
                                               distribution='uniform')),
    rpn_head=dict(anchor_generator=dict(scales=[4])),
    roi_head=dict(
        bbox_head=dict(type='Shared4Conv1FCBBoxHead', norm_cfg=norm_cfg, num_classes=3,
                       conv_out_channels=box_head_conv_channels,
                       fc_out_channels=box_head_fc_channels),
        mask_head=dict(norm_cfg=norm_cfg, num_classes=3,
                       conv_out_channels=mask_head_conv_channels)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=1000, max_per_img=300),
                   rcnn=dict(sampler=dict(num=32))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=50), rcnn=dict(max_per_img=20)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(256, 192), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(256, 192), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=2, num_workers=1, persistent_workers=True,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes), ann_file='train.json',
                 data_prefix=dict(img='images/'), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2, num_workers=1, persistent_workers=True,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes), ann_file='val.json',
                 data_prefix=dict(img='images/'), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'val.json', metric=['bbox', 'segm'])
test_evaluator = val_evaluator

max_epochs = 8
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=10),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[7], gamma=0.1)
]
optim_wrapper = dict(optimizer=dict(lr=0.01))
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=max_epochs))
randomness = dict(seed=0)
