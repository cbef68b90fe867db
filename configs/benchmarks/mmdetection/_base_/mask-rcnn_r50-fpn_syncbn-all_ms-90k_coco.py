# The CrossCL reference's detectron2 protocol for Mask R-CNN R50-FPN on COCO,
# 90k iterations at 16 images (detectron2's "1x"), in mmdet 3.3: yanjk3/CrossCL
# detection/configs/CrossCL-MaskRCNN-FPN-COCO-1x.yaml over R_50_FPN_1x.yaml,
# Base-RCNN-FPN.yaml and detectron2's defaults (SoCo's R_50_FPN_1x.yaml is the
# same). The comments give the detectron2 key; docs/transfer_protocol.md has
# the side-by-side table and tests/test_transfer_protocol.py pins every value.
#
# A leaf per pretraining method (e.g. ../mask-rcnn_r50-fpn_syncbn-all_crosscl-fpn_ms-90k_coco.py)
# inherits this file and points the `Pretrained` init_cfgs at what its
# checkpoint holds; alone, it starts from mmdet's default, torchvision's
# ImageNet-supervised ResNet-50 (same RGB input and stride placement).
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    './datasets/coco_instance_strict.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['crosscl_mm'], allow_failed_imports=False)

norm_cfg = dict(type='SyncBN', requires_grad=True)  # RESNETS/FPN/ROI_*_HEAD.NORM: "SyncBN"
model = dict(
    # INPUT.FORMAT "RGB", PIXEL_MEAN/PIXEL_STD: ImageNet statistics in 0-255 RGB,
    # the normalisation of pretraining.
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                           bgr_to_rgb=True, pad_size_divisor=32),
    backbone=dict(
        frozen_stages=-1,  # BACKBONE.FREEZE_AT: 0
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch'),  # RESNETS.STRIDE_IN_1X1: False (stride in the 3x3 conv)
    # FPN.NORM "SyncBN": convs are built without bias (mmdet's ConvModule, like
    # detectron2's FPN), so pretrained FPN conv biases are not used, as in the
    # reference. Init of what is not pretrained: detectron2's c2_xavier_fill.
    neck=dict(norm_cfg=norm_cfg, init_cfg=dict(type='Caffe2Xavier', layer='Conv2d')),
    roi_head=dict(
        # ROI_BOX_HEAD: FastRCNNConvFCHead, NUM_CONV 4, NUM_FC 1, NORM SyncBN;
        # detectron2's init: convs c2_msra_fill, fc c2_xavier_fill.
        bbox_head=dict(
            type='Shared4Conv1FCBBoxHead', conv_out_channels=256, norm_cfg=norm_cfg,
            init_cfg=[dict(type='Normal', std=0.01, override=dict(name='fc_cls')),
                      dict(type='Normal', std=0.001, override=dict(name='fc_reg')),
                      dict(type='Kaiming', layer='Conv2d'),  # the 4 shared convs
                      dict(type='Caffe2Xavier', override=dict(name='shared_fcs'))]),
        # ROI_MASK_HEAD: NUM_CONV 4, NORM SyncBN. (FCNMaskHead refuses an
        # init_cfg: its predictor keeps mmdet's init, docs/transfer_protocol.md.)
        mask_head=dict(norm_cfg=norm_cfg)),
    # RPN's Matcher allows low-quality matches of any IoU: the anchors that
    # overlap a box most are positives even below 0.3 (mmdet: min_pos_iou 0.3).
    train_cfg=dict(rpn=dict(assigner=dict(min_pos_iou=0.0))))

# INPUT.MIN_SIZE_TRAIN (640, ..., 800), MIN_SIZE_TRAIN_SAMPLING "choice",
# MAX_SIZE_TRAIN 1333: the shorter side is drawn per image. Test: 800 / 1333
# (coco_instance.py's Resize (1333, 800)).
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomChoiceResize',
         scales=[(1333, 640), (1333, 672), (1333, 704), (1333, 736), (1333, 768), (1333, 800)],
         keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
# SOLVER.IMS_PER_BATCH 16 = 8 GPUs x 2; an endless shuffled stream, grouped by
# aspect ratio (DATALOADER.ASPECT_RATIO_GROUPING), as detectron2's TrainingSampler.
# Images without boxes are dropped (FILTER_EMPTY_ANNOTATIONS), none for its size.
train_dataloader = dict(
    batch_size=2, sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(filter_cfg=dict(filter_empty_gt=True, min_size=0), pipeline=train_pipeline))

# SOLVER.MAX_ITER 90000; TEST.EVAL_PERIOD 0: one evaluation, at the end.
max_iters = 90000
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
# SOLVER.WARMUP_METHOD "linear", WARMUP_FACTOR 0.001, WARMUP_ITERS 1000;
# STEPS (60000, 80000), GAMMA 0.1.
param_scheduler = [
    # LinearLR reaches its end factor at `end - 1`: end=1000+1 gives detectron2's
    # factor f + (1 - f) * i / 1000 at every iteration i.
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1001),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters, milestones=[60000, 80000],
         gamma=0.1),
]
# SOLVER.BASE_LR 0.02, MOMENTUM 0.9, WEIGHT_DECAY 2.5e-5 (the reference's, after
# SoCo), WEIGHT_DECAY_NORM 0 (no decay on norm layers' weights and biases), and
# WEIGHT_DECAY_BIAS, which the YAMLs do not set: detectron2 v0.3 (SoCo's
# Dockerfile installs hologerry's fork of it) binds it to 1e-4 when its defaults
# load and gives it to every bias outside norm layers.
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='crosscl_mm.Detectron2OptimWrapperConstructor',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=2.5e-5),
    paramwise_cfg=dict(detectron2_version='v0.3', weight_decay_norm=0.0))
# TEST.PRECISE_BN.ENABLED True, NUM_ITER 200: BN statistics re-estimated on
# 200 training batches before the evaluation (and the last checkpoint).
custom_hooks = [dict(type='crosscl_mm.DetPreciseBNHook', num_iters=200)]
# SOLVER.CHECKPOINT_PERIOD 5000.
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=5000, max_keep_ckpts=3))
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(base_batch_size=16)
