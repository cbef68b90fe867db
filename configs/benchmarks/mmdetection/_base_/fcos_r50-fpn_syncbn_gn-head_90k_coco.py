# DenseCL's COCO detection protocol through AdelaiDet: FCOS R50-FPN, 90k
# iterations at 16 images ("1x"), in mmdet 3.3. Source: aim-uofa/AdelaiDet
# configs/DenseCL/FCOS_R50_1x_DenseCL.yaml @ 5ebcac9 over FCOS_R50_1x.yaml,
# configs/FCOS-Detection/Base-FCOS.yaml, AdelaiDet's adet/config/defaults.py and
# detectron2 v0.2's defaults (the solver: schedule_adelaidet-densecl_90k.py).
# Comments give the detectron2/AdelaiDet key; docs/transfer_protocol.md has the
# side-by-side table and tests/test_transfer_protocol.py pins every value.
# A leaf per method (../fcos_r50-fpn_syncbn_gn-head_densecl_90k_coco.py) points the
# backbone's Pretrained init at its converted checkpoint.
_base_ = [
    './datasets/coco_detection_strict.py',
    './schedule_adelaidet-densecl_90k.py',
]

norm_cfg = dict(type='SyncBN', requires_grad=True)  # RESNETS.NORM, FPN.NORM: "SyncBN"
model = dict(
    type='FCOS',
    # INPUT.FORMAT "RGB", PIXEL_MEAN/PIXEL_STD: ImageNet statistics in 0-255 RGB;
    # the FPN backbone pads to a multiple of 32.
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_size_divisor=32),
    backbone=dict(
        type='ResNet', depth=50, num_stages=4,
        out_indices=(1, 2, 3),  # RESNETS.OUT_FEATURES ["res3", "res4", "res5"]
        frozen_stages=-1,  # BACKBONE.FREEZE_AT: 0
        norm_cfg=norm_cfg, norm_eval=False,
        style='pytorch',  # RESNETS.STRIDE_IN_1X1: False
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    # build_fcos_resnet_fpn_backbone: FPN over res3-res5 (FPN.NORM SyncBN, convs
    # without bias), then FCOS.TOP_LEVELS 2: LastLevelP6P7(in_features "p5"),
    # P6 = conv(P5), P7 = conv(relu(P6)), plain convs with bias and no norm.
    # Init: c2_xavier_fill everywhere.
    neck=dict(
        type='crosscl_mm.FPNPlainTopLevels', in_channels=[512, 1024, 2048], out_channels=256,
        start_level=0, add_extra_convs='on_output', num_outs=5, relu_before_extra_convs=True,
        norm_cfg=norm_cfg, init_cfg=dict(type='Caffe2Xavier', layer='Conv2d')),
    bbox_head=dict(
        type='crosscl_mm.AdelaiDetFCOSHead',  # AdelaiDet's inference (see the class)
        num_classes=80,  # FCOS.NUM_CLASSES
        in_channels=256,
        stacked_convs=4,  # FCOS.NUM_CLS_CONVS / NUM_BOX_CONVS 4, NUM_SHARE_CONVS 0
        feat_channels=256,
        strides=[8, 16, 32, 64, 128],  # FCOS.FPN_STRIDES
        # FCOS.SIZES_OF_INTEREST [64, 128, 256, 512] -> [-1, 64], ..., [512, INF]
        regress_ranges=((-1, 64), (64, 128), (128, 256), (256, 512), (512, 100000000)),
        center_sampling=True,  # FCOS.CENTER_SAMPLE
        center_sample_radius=1.5,  # FCOS.POS_RADIUS
        norm_on_bbox=True,  # targets / stride, relu'd predictions (FCOS.USE_RELU)
        centerness_on_reg=True,  # ctrness from the bbox tower
        conv_bias=True,  # tower convs have a bias before their GN
        norm_cfg=dict(type='GN', num_groups=32, requires_grad=True),  # FCOS.NORM "GN"
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                      loss_weight=1.0),  # LOSS_GAMMA, LOSS_ALPHA, LOSS_WEIGHT_CLS
        loss_bbox=dict(type='crosscl_mm.AdelaiDetGIoULoss', loss_weight=1.0),  # LOC_LOSS_TYPE
        loss_centerness=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        # normal(std 0.01) convs, zero biases, cls_logits bias for FCOS.PRIOR_PROB 0.01
        init_cfg=dict(type='Normal', layer='Conv2d', std=0.01,
                      override=dict(type='Normal', name='conv_cls', std=0.01, bias_prob=0.01))),
    train_cfg=None,
    test_cfg=dict(
        nms_pre=1000,  # FCOS.PRE_NMS_TOPK_TEST
        min_bbox_size=0,
        score_thr=0.05,  # FCOS.INFERENCE_TH_TEST
        nms=dict(type='nms', iou_threshold=0.6),  # FCOS.NMS_TH
        max_per_img=100))  # FCOS.POST_NMS_TOPK_TEST

# INPUT.MIN_SIZE_TRAIN (640, ..., 800), MIN_SIZE_TRAIN_SAMPLING "choice",
# MAX_SIZE_TRAIN 1333; INPUT.HFLIP_TRAIN True (AdelaiDet's build_augmentation).
# Test: MIN_SIZE_TEST 800, MAX_SIZE_TEST 1333 (coco_detection.py's Resize (1333, 800)).
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomChoiceResize',
         scales=[(1333, 640), (1333, 672), (1333, 704), (1333, 736), (1333, 768), (1333, 800)],
         keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
# SOLVER.IMS_PER_BATCH 16 = 8 GPUs x 2; an endless shuffled stream grouped by
# aspect ratio; images without boxes dropped (FILTER_EMPTY_ANNOTATIONS), none for size.
train_dataloader = dict(
    batch_size=2, sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(filter_cfg=dict(filter_empty_gt=True, min_size=0), pipeline=train_pipeline))
