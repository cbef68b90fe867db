# The CrossCL COCO 90k leaf (backbone + FPN pretrained), shrunk for tests of
# tools/benchmarks/transfer.py: the generated shapes data (COCO format:
# images/, train.json, val.json; 3 classes), 96-pixel images, 2 iterations,
# Precise BN over 2 batches, few proposals. The model, optimizer and the
# Pretrained inits are the real leaf's.
_base_ = '../../configs/benchmarks/mmdetection/mask-rcnn_r50-fpn_syncbn-all_crosscl-fpn_ms-90k_coco.py'

data_root = 'data/shapes/'
classes = ('circle', 'rectangle', 'triangle')
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomChoiceResize', scales=[(96, 64), (96, 96)], keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='Resize', scale=(96, 64), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                          'scale_factor')),
]
train_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes), ann_file='train.json',
                 data_prefix=dict(img='images/'), pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes), ann_file='val.json',
                 data_prefix=dict(img='images/'), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'val.json')
test_evaluator = val_evaluator

model = dict(
    roi_head=dict(bbox_head=dict(num_classes=3), mask_head=dict(num_classes=3)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=200, max_per_img=50),
                   rcnn=dict(sampler=dict(num=16))),
    test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=16), rcnn=dict(score_thr=0.0)))

max_iters = 2
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
custom_hooks = [dict(type='crosscl_mm.DetPreciseBNHook', num_iters=2)]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(save_last=False))
