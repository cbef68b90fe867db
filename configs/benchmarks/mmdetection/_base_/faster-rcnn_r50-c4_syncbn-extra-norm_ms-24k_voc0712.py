# The CrossCL reference's detectron2 protocol for Faster R-CNN R50-C4 on
# VOC07+12 trainval, tested on VOC2007 test, 24k iterations at 16 images, in
# mmdet 3.3: yanjk3/CrossCL detection/configs/CrossCL-FasterRCNN-C4-VOC-24k.yaml
# over Base-RCNN-C4-BN.yaml and detectron2's defaults (MoCo's VOC protocol).
# The comments give the detectron2 key; docs/transfer_protocol.md has the
# side-by-side table and tests/test_transfer_protocol.py pins every value.
#
# A leaf per pretraining method (e.g. ../faster-rcnn_r50-c4_syncbn_crosscl_24k_voc0712.py)
# points the `Pretrained` init_cfgs at its checkpoint; alone, this file starts
# from torchvision's ImageNet-supervised ResNet-50 (mmdet's base uses Caffe
# weights, which do not fit this RGB, PyTorch-style network).
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50-caffe-c4.py',
    'mmdet::_base_/datasets/voc0712.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['crosscl_mm'], allow_failed_imports=False)

norm_cfg = dict(type='SyncBN', requires_grad=True)  # RESNETS.NORM: "SyncBN"
model = dict(
    # INPUT.FORMAT "RGB", PIXEL_MEAN/PIXEL_STD in 0-255 RGB; a C4 backbone has
    # no size divisibility in detectron2 (images padded to the batch's largest).
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                           bgr_to_rgb=True, pad_size_divisor=1),
    backbone=dict(
        frozen_stages=-1,  # BACKBONE.FREEZE_AT: 0
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',  # RESNETS.STRIDE_IN_1X1: False
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    roi_head=dict(
        # ROI_HEADS.NAME "Res5ROIHeadsExtraNorm": res5 (the pretrained layer4)
        # followed by one more SyncBN.
        shared_head=dict(type='crosscl_mm.ResLayerExtraNorm', norm_cfg=norm_cfg,
                         norm_eval=False, style='pytorch',
                         init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
        bbox_head=dict(num_classes=20)),  # ROI_HEADS.NUM_CLASSES 20
    # RPN's Matcher allows low-quality matches of any IoU (mmdet: min_pos_iou 0.3).
    train_cfg=dict(rpn=dict(assigner=dict(min_pos_iou=0.0))))

# INPUT.MIN_SIZE_TRAIN (480, 512, ..., 800), "choice", MAX_SIZE_TRAIN 1333;
# MIN_SIZE_TEST 800, MAX_SIZE_TEST 1333.
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomChoiceResize',
         scales=[(1333, 480), (1333, 512), (1333, 544), (1333, 576), (1333, 608), (1333, 640),
                 (1333, 672), (1333, 704), (1333, 736), (1333, 768), (1333, 800)],
         keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
data_root = 'data/VOCdevkit/'
# StrictVOCDataset: difficult objects are trained on and left out of the
# evaluation (detectron2's pascal_voc.py and VOC evaluator); no images or boxes
# dropped for their size (mmdet's voc0712.py ignores boxes under 32 px);
# images without objects dropped (DATALOADER.FILTER_EMPTY_ANNOTATIONS).
voc_trainval = dict(type='crosscl_mm.StrictVOCDataset', data_root=data_root,
                    train_on_difficult=True, filter_cfg=dict(filter_empty_gt=True),
                    pipeline=train_pipeline)
# DATASETS.TRAIN ('voc_2007_trainval', 'voc_2012_trainval'); IMS_PER_BATCH 16
# = 8 GPUs x 2, an endless shuffled stream grouped by aspect ratio.
train_dataloader = dict(
    batch_size=2,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        ignore_keys=['dataset_type'],  # VOC2007 and VOC2012 differ only there
        datasets=[
            dict(voc_trainval, ann_file='VOC2007/ImageSets/Main/trainval.txt',
                 data_prefix=dict(sub_data_root='VOC2007/')),
            dict(voc_trainval, ann_file='VOC2012/ImageSets/Main/trainval.txt',
                 data_prefix=dict(sub_data_root='VOC2012/')),
        ]))
# DATASETS.TEST ('voc_2007_test',).
val_dataloader = dict(dataset=dict(type='crosscl_mm.StrictVOCDataset', data_root=data_root,
                                   pipeline=test_pipeline))
test_dataloader = val_dataloader
# detectron2's PascalVOCDetectionEvaluator on VOC2007: 11-point AP averaged
# over IoU 0.50:0.05:0.95 (pascal_voc/mAP), AP50 and AP75; difficult objects
# count neither as positives nor as false positives.
val_evaluator = dict(type='VOCMetric', metric='mAP', eval_mode='11points',
                     iou_thrs=[0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95])
test_evaluator = val_evaluator

# SOLVER.MAX_ITER 24000; TEST.EVAL_PERIOD 0: one evaluation, at the end.
max_iters = 24000
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
# SOLVER.WARMUP_ITERS 100 (linear from WARMUP_FACTOR 0.001); STEPS (18000, 22000).
param_scheduler = [
    # LinearLR reaches its end factor at `end - 1`: end=100+1 gives detectron2's
    # factor f + (1 - f) * i / 100 at every iteration i.
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=101),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters, milestones=[18000, 22000],
         gamma=0.1),
]
# SOLVER.BASE_LR 0.02, MOMENTUM 0.9, WEIGHT_DECAY 1e-4 (detectron2's default;
# the VOC config does not change it), WEIGHT_DECAY_NORM 0, WEIGHT_DECAY_BIAS
# 1e-4 (defaults.py), as detectron2 v0.3's build_optimizer applies them (MoCo's,
# DetCo's and CrossCL's VOC runs: v0.3; CoinCheung/DenseCL's R101 runs:
# detectron2 3e71a27, v0.3 + 126 commits, the same rule).
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='crosscl_mm.Detectron2OptimWrapperConstructor',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(detectron2_version='v0.3', weight_decay_norm=0.0))
# TEST.PRECISE_BN.ENABLED True, NUM_ITER 200.
custom_hooks = [dict(type='crosscl_mm.DetPreciseBNHook', num_iters=200)]
# SOLVER.CHECKPOINT_PERIOD 5000.
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=5000, max_keep_ckpts=3))
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(base_batch_size=16)
