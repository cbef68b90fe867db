# DenseCL's COCO instance segmentation protocol through AdelaiDet: SOLOv2 R50-FPN,
# 90k iterations at 16 images ("1x"), in mmdet 3.3. Source: aim-uofa/AdelaiDet
# configs/DenseCL/SOLOv2_R50_1x_DenseCL.yaml @ 5ebcac9 over SOLOv2_R50_1x.yaml,
# configs/SOLOv2/Base-SOLOv2.yaml, AdelaiDet's adet/config/defaults.py
# (MODEL.SOLOV2.*) and detectron2 v0.2's defaults (the solver:
# schedule_adelaidet-densecl_90k.py). Comments give the detectron2/AdelaiDet key;
# docs/transfer_protocol.md has the side-by-side table.
# A leaf per method (../solov2_r50-fpn_syncbn_gn-head_densecl_90k_coco.py) points
# the backbone's Pretrained init at its converted checkpoint.
_base_ = [
    './datasets/coco_instance_strict.py',
    './schedule_adelaidet-densecl_90k.py',
]

norm_cfg = dict(type='SyncBN', requires_grad=True)  # RESNETS.NORM, FPN.NORM: "SyncBN"
model = dict(
    type='SOLOv2',
    # INPUT.FORMAT "RGB", PIXEL_MEAN/PIXEL_STD; padded to 32 (FPN size_divisibility).
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_mask=True,
                           pad_size_divisor=32),
    backbone=dict(
        type='ResNet', depth=50, num_stages=4,
        out_indices=(0, 1, 2, 3),  # RESNETS.OUT_FEATURES ["res2", ..., "res5"]
        frozen_stages=-1,  # BACKBONE.FREEZE_AT: 0
        norm_cfg=norm_cfg, norm_eval=False,
        style='pytorch',  # RESNETS.STRIDE_IN_1X1: False
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    # build_resnet_fpn_backbone: P2-P5 (FPN.NORM SyncBN, convs without bias) and
    # LastLevelMaxPool's P6 (max pool, kernel 1, stride 2); c2_xavier_fill init.
    neck=dict(type='FPN', in_channels=[256, 512, 1024, 2048], out_channels=256, start_level=0,
              num_outs=5, add_extra_convs=False, norm_cfg=norm_cfg,
              init_cfg=dict(type='Caffe2Xavier', layer='Conv2d')),
    mask_head=dict(
        type='SOLOV2Head',
        num_classes=80,  # SOLOV2.NUM_CLASSES
        in_channels=256,  # SOLOV2.INSTANCE_IN_CHANNELS
        feat_channels=512,  # SOLOV2.INSTANCE_CHANNELS
        stacked_convs=4,  # SOLOV2.NUM_INSTANCE_CONVS
        strides=[8, 8, 16, 32, 32],  # SOLOV2.FPN_INSTANCE_STRIDES
        scale_ranges=((1, 96), (48, 192), (96, 384), (192, 768), (384, 2048)),
        pos_scale=0.2,  # SOLOV2.SIGMA
        num_grids=[40, 36, 24, 16, 12],  # SOLOV2.NUM_GRIDS
        cls_down_index=0,
        norm_cfg=dict(type='GN', num_groups=32, requires_grad=True),  # SOLOV2.NORM "GN"
        mask_feature_head=dict(
            feat_channels=128,  # SOLOV2.MASK_CHANNELS
            start_level=0, end_level=3,  # SOLOV2.MASK_IN_FEATURES ["p2", ..., "p5"]
            out_channels=256,  # SOLOV2.NUM_MASKS (= NUM_KERNELS)
            mask_stride=4,
            norm_cfg=dict(type='GN', num_groups=32, requires_grad=True)),
        loss_mask=dict(type='DiceLoss', use_sigmoid=True, loss_weight=3.0),  # DICE_WEIGHT
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                      loss_weight=1.0),  # FOCAL_GAMMA, FOCAL_ALPHA, FOCAL_WEIGHT
        # normal(std 0.01) convs, zero biases, cate_pred bias for SOLOV2.PRIOR_PROB 0.01
        # (mmdet's default, written out); the mask branch's (MaskFeatModule) the same.
        init_cfg=[dict(type='Normal', layer='Conv2d', std=0.01),
                  dict(type='Normal', std=0.01, bias_prob=0.01, override=dict(name='conv_cls'))]),
    test_cfg=dict(
        nms_pre=500,  # SOLOV2.NMS_PRE
        score_thr=0.1,  # SOLOV2.SCORE_THR
        mask_thr=0.5,  # SOLOV2.MASK_THR
        filter_thr=0.05,  # SOLOV2.UPDATE_THR
        kernel='gaussian',  # SOLOV2.NMS_TYPE "matrix", NMS_KERNEL "gaussian"
        sigma=2.0,  # SOLOV2.NMS_SIGMA
        max_per_img=100))  # SOLOV2.MAX_PER_IMG

# INPUT.MIN_SIZE_TRAIN (640, ..., 800) "choice", MAX_SIZE_TRAIN 1333, HFLIP_TRAIN;
# MASK_FORMAT "bitmask" (polygons rasterised). Test: 800 / 1333.
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomChoiceResize',
         scales=[(1333, 640), (1333, 672), (1333, 704), (1333, 736), (1333, 768), (1333, 800)],
         keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(
    batch_size=2, sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(filter_cfg=dict(filter_empty_gt=True, min_size=0), pipeline=train_pipeline))
# The published number is mask AP (SOLOv2 predicts no boxes).
val_evaluator = dict(metric='segm')
test_evaluator = val_evaluator

# SOLVER.WARMUP_FACTOR 0.01 (Base-SOLOv2.yaml), WARMUP_ITERS 1000 (end 1001: see
# schedule_adelaidet-densecl_90k.py).
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=1001),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end={{_base_.max_iters}},
         milestones=[60000, 80000], gamma=0.1),
]
