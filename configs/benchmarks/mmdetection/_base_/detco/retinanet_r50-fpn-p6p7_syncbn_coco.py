# DetCo's COCO RetinaNet R50-FPN (xieenze/DetCo benchmarks/detection/configs/
# coco_R_50_RetinaNet_1x_moco.yaml over coco_R_50_RetinaNet_1x.yaml,
# Base-RetinaNet.yaml and detectron2 v0.3's defaults; MoCo's): model and data.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    '../datasets/coco_detection_strict.py',
    'runtime.py',
]

norm_cfg = dict(type='SyncBN', requires_grad=True)  # RESNETS.NORM, FPN.NORM: "SyncBN"
model = dict(
    # INPUT.FORMAT "RGB", PIXEL_MEAN/PIXEL_STD in 0-255 RGB; FPN pads to 32.
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                           bgr_to_rgb=True, pad_size_divisor=32),
    backbone=dict(
        frozen_stages=-1,  # BACKBONE.FREEZE_AT: 0
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch'),  # RESNETS.STRIDE_IN_1X1: False
    # build_retinanet_resnet_fpn_backbone: FPN on res3-res5 (SyncBN laterals
    # and outputs, no bias), LastLevelP6P7 from res5: P6 = conv(C5),
    # P7 = conv(relu(P6)), both with bias and without norm; c2_xavier_fill.
    neck=dict(type='crosscl_mm.Detectron2RetinaFPN', norm_cfg=norm_cfg,
              add_extra_convs='on_input', relu_before_extra_convs=True,
              init_cfg=dict(type='Caffe2Xavier', layer='Conv2d')),
    # RetinaNetHead: NUM_CONVS 4, NORM "", PRIOR_PROB 0.01; focal loss
    # ALPHA 0.25, GAMMA 2.0; SMOOTH_L1_LOSS_BETA 0.0 (an L1 loss); both
    # divided by detectron2's moving average of positive anchors.
    # Init (RetinaNetHead): convs normal std 0.01, bias 0; classifier bias
    # -log((1 - PRIOR_PROB) / PRIOR_PROB).
    bbox_head=dict(type='crosscl_mm.Detectron2RetinaHead', norm_cfg=None, reg_decoded_bbox=False,
                   loss_normalizer=100.0, loss_normalizer_momentum=0.9,
                   init_cfg=dict(type='Normal', layer='Conv2d', std=0.01,
                                 override=dict(type='Normal', name='retina_cls', std=0.01,
                                               bias_prob=0.01))))

# INPUT.MIN_SIZE_TRAIN (640, ..., 800), "choice", MAX_SIZE_TRAIN 1333;
# MIN_SIZE_TEST 800, MAX_SIZE_TEST 1333 (coco_detection.py's test).
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomChoiceResize',
         scales=[(1333, 640), (1333, 672), (1333, 704), (1333, 736), (1333, 768), (1333, 800)],
         keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(
    batch_size=2, sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(filter_cfg=dict(filter_empty_gt=True, min_size=0), pipeline=train_pipeline))
# SOLVER.BASE_LR 0.01 ("RetinaNet uses a different default learning rate").
optim_wrapper = dict(optimizer=dict(lr=0.01))
