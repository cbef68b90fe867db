# SoCo's 100-epoch data: imagenet_soco.py plus the cutout in the boxes of views 2 and 3
# (official ImageAsymBboxAwareMultiJitter1Cutout, tools/SoCo_FPN_100ep.sh: prob 0.5,
# area 0.1-0.3 of the box). The official transform crashes (docs/soco.md, B1);
# CutoutInBoxes implements it as intended.
_base_ = './imagenet_soco.py'
train_pipeline = [
    dict(type='LoadImageRGB'),
    dict(type='LoadProposals'),
    dict(type='SoCoViews', view_sizes=(224, 224, 112), crop_scale=(0.5, 1.0), flip_prob=0.5,
         select_k=4, padding_k=4, max_tries=5, jitter_prob=0.5, jitter_ratio=0.1,
         level_size_limits=(48, 96, 192, 224)),
    {{_base_.view1_colors}},
    {{_base_.view2_colors}},
    dict(type='CutoutInBoxes', views=[1, 2], prob=0.5, area_ratio=(0.1, 0.3)),
    dict(type='PackRegionPairInputs', meta_keys=('img_path', 'crop_boxes', 'flips', 'view_sizes')),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
