# DetCo's COCO Mask R-CNN R50-FPN (xieenze/DetCo benchmarks/detection/configs/
# coco_R_50_FPN_1x_moco.yaml over coco_R_50_FPN_1x.yaml, Base-RCNN-FPN.yaml and
# detectron2 v0.3's defaults; MoCo's): model and data. Unlike CrossCL's/SoCo's
# protocol, the box head is 2fc without norm and the mask head has no norm;
# SyncBN is in the backbone and the FPN only.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    '../datasets/coco_instance_strict.py',
    'runtime.py',
]

norm_cfg = dict(type='SyncBN', requires_grad=True)  # RESNETS.NORM, FPN.NORM: "SyncBN"
model = dict(
    # INPUT.FORMAT "RGB", PIXEL_MEAN/PIXEL_STD in 0-255 RGB.
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                           bgr_to_rgb=True, pad_size_divisor=32),
    backbone=dict(
        frozen_stages=-1,  # BACKBONE.FREEZE_AT: 0
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch'),  # RESNETS.STRIDE_IN_1X1: False
    # FPN convs without bias under SyncBN, c2_xavier_fill init.
    neck=dict(norm_cfg=norm_cfg, init_cfg=dict(type='Caffe2Xavier', layer='Conv2d')),
    roi_head=dict(
        # ROI_BOX_HEAD: FastRCNNConvFCHead, NUM_CONV 0, NUM_FC 2, FC_DIM 1024,
        # NORM "": mmdet's Shared2FCBBoxHead; fcs c2_xavier_fill.
        bbox_head=dict(
            type='Shared2FCBBoxHead', norm_cfg=None,
            init_cfg=[dict(type='Normal', std=0.01, override=dict(name='fc_cls')),
                      dict(type='Normal', std=0.001, override=dict(name='fc_reg')),
                      dict(type='Caffe2Xavier', override=dict(name='shared_fcs'))]),
        # ROI_MASK_HEAD: NUM_CONV 4, CONV_DIM 256, NORM "" (mmdet's default).
        mask_head=dict(norm_cfg=None)),
    # RPN's Matcher allows low-quality matches of any IoU (mmdet: min_pos_iou 0.3).
    train_cfg=dict(rpn=dict(assigner=dict(min_pos_iou=0.0))))

# INPUT.MIN_SIZE_TRAIN (640, ..., 800), "choice", MAX_SIZE_TRAIN 1333;
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
train_dataloader = dict(
    batch_size=2, sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(filter_cfg=dict(filter_empty_gt=True, min_size=0), pipeline=train_pipeline))
