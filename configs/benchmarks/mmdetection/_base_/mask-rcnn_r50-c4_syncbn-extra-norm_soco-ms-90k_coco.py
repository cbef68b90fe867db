# SoCo's detectron2 protocol for Mask R-CNN R50-C4 on COCO, 90k iterations at 16
# images (detectron2's "1x"), in mmdet 3.3: hologerry/SoCo
# detectron2_configs/SoCo_C4_400ep.yaml (and SoCo_C4_100ep.yaml, the same but
# for the weights) over R_50_C4_1x.yaml, Base-RCNN-C4-BN.yaml and the defaults
# of the detectron2 SoCo ran (hologerry/detectron2, v0.3 plus upstream up to
# f71d845, 2021-01-03; its docker/Dockerfile installs it). The comments give the
# detectron2 key; docs/transfer_protocol.md has the side-by-side table and
# tests/test_transfer_protocol.py pins every value. The same protocol as a
# detectron2 YAML: configs/benchmarks/detectron2/mask_rcnn_R_50_C4_1x_syncbn_soco.yaml.
#
# It differs from DetCo's C4 COCO protocol (max size 1200, weight decay 1e-4):
# SoCo keeps detectron2's 1333 and sets WEIGHT_DECAY 2.5e-5.
#
# A leaf per pretraining method (../mask-rcnn_r50-c4_syncbn_soco-c4_soco-ms-90k_coco.py)
# points the `Pretrained` init_cfgs at its checkpoint; alone, this file starts
# from torchvision's ImageNet-supervised ResNet-50.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50-caffe-c4.py',
    './datasets/coco_instance_strict.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['crosscl_mm'], allow_failed_imports=False)

norm_cfg = dict(type='SyncBN', requires_grad=True)  # RESNETS.NORM: "SyncBN"
model = dict(
    # INPUT.FORMAT "RGB", PIXEL_MEAN/PIXEL_STD in 0-255 RGB (SoCo_C4_*.yaml); a
    # C4 backbone has no size divisibility in detectron2.
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                           bgr_to_rgb=True, pad_size_divisor=1),
    backbone=dict(
        frozen_stages=-1,  # BACKBONE.FREEZE_AT: 0
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',  # RESNETS.STRIDE_IN_1X1: False
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    roi_head=dict(
        # ROI_HEADS.NAME "Res5ROIHeadsExtraNorm" (registered by hologerry's
        # detectron2): res5 followed by one more SyncBN; box and mask heads
        # share its output (the mask head: no convs, a deconv to 256 channels).
        shared_head=dict(type='crosscl_mm.ResLayerExtraNorm', norm_cfg=norm_cfg,
                         norm_eval=False, style='pytorch',
                         init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
        bbox_head=dict(num_classes=80),  # ROI_HEADS.NUM_CLASSES 80
        mask_head=dict(num_classes=80)),
    # RPN's Matcher allows low-quality matches of any IoU (mmdet: min_pos_iou 0.3).
    train_cfg=dict(rpn=dict(assigner=dict(min_pos_iou=0.0))))

# INPUT.MIN_SIZE_TRAIN (640, ..., 800), "choice", MAX_SIZE_TRAIN 1333 (R_50_C4_1x.yaml);
# MIN_SIZE_TEST 800, MAX_SIZE_TEST 1333.
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomChoiceResize',
         scales=[(1333, 640), (1333, 672), (1333, 704), (1333, 736), (1333, 768), (1333, 800)],
         keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
# DATASETS.TRAIN ("coco_2017_train",), TEST ("coco_2017_val",); StrictCocoDataset (the base)
# stops on a malformed annotation file, naming the file, field and index.
# SOLVER.IMS_PER_BATCH 16 = 8 GPUs x 2, an endless shuffled stream grouped by
# aspect ratio; images without boxes dropped (FILTER_EMPTY_ANNOTATIONS), none for size.
train_dataloader = dict(
    batch_size=2, sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(filter_cfg=dict(filter_empty_gt=True, min_size=0), pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
# COCOEvaluator: pycocotools bbox and segm AP.
val_evaluator = dict(type='CocoMetric', metric=['bbox', 'segm'])
test_evaluator = val_evaluator

# SOLVER.MAX_ITER 90000; TEST.EVAL_PERIOD 0: one evaluation, at the end.
max_iters = 90000
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
# SOLVER.WARMUP_METHOD "linear", WARMUP_FACTOR 0.001, WARMUP_ITERS 1000 (defaults);
# STEPS (60000, 80000), GAMMA 0.1.
param_scheduler = [
    # LinearLR reaches its end factor at `end - 1`: end=1000+1 gives detectron2's
    # factor f + (1 - f) * i / 1000 at every iteration i.
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1001),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters, milestones=[60000, 80000],
         gamma=0.1),
]
# SOLVER.BASE_LR 0.02, MOMENTUM 0.9, WEIGHT_DECAY 2.5e-5 (SoCo_C4_*.yaml),
# WEIGHT_DECAY_NORM 0; WEIGHT_DECAY_BIAS is bound to 1e-4 when detectron2 v0.3's
# defaults load, and v0.3's build_optimizer gives it to the biases of non-norm layers.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    constructor='crosscl_mm.Detectron2OptimWrapperConstructor',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=2.5e-5),
    paramwise_cfg=dict(detectron2_version='v0.3', weight_decay_norm=0.0))
# TEST.PRECISE_BN.ENABLED True (Base-RCNN-C4-BN.yaml), NUM_ITER 200.
custom_hooks = [dict(type='crosscl_mm.DetPreciseBNHook', num_iters=200)]
# SOLVER.CHECKPOINT_PERIOD 5000.
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=5000, max_keep_ckpts=3))
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(base_batch_size=16)
