# DetCo's COCO Mask R-CNN R50-C4 (xieenze/DetCo benchmarks/detection/configs/
# coco_R_50_C4_2x_moco.yaml over coco_R_50_C4_2x.yaml, Base-RCNN-C4-BN.yaml and
# detectron2 v0.3's defaults; MoCo's): model and data. The schedule comes from
# ../schedules/detco_ms-*.py; ../mask-rcnn_r50-c4_syncbn-extra-norm_detco-ms-*_coco.py
# put the two together.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50-caffe-c4.py',
    '../datasets/coco_instance_strict.py',
    'runtime.py',
]

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
        # followed by one more SyncBN; box predictor on its mean-pooled output,
        # mask head (NUM_CONV 0) a 2x deconv of the same res5 features.
        shared_head=dict(type='crosscl_mm.ResLayerExtraNorm', norm_cfg=norm_cfg,
                         norm_eval=False, style='pytorch',
                         init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50'))),
    # RPN's Matcher allows low-quality matches of any IoU (mmdet: min_pos_iou 0.3).
    train_cfg=dict(rpn=dict(assigner=dict(min_pos_iou=0.0))))

# INPUT.MIN_SIZE_TRAIN (640, ..., 800), "choice", MAX_SIZE_TRAIN 1200 (the
# _moco YAML); MIN_SIZE_TEST 800, MAX_SIZE_TEST 1333 (coco_instance.py's test).
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomChoiceResize',
         scales=[(1200, 640), (1200, 672), (1200, 704), (1200, 736), (1200, 768), (1200, 800)],
         keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
# An endless shuffled stream grouped by aspect ratio (TrainingSampler); images
# without boxes dropped (FILTER_EMPTY_ANNOTATIONS), none for its size.
train_dataloader = dict(
    batch_size=2, sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(filter_cfg=dict(filter_empty_gt=True, min_size=0), pipeline=train_pipeline))
