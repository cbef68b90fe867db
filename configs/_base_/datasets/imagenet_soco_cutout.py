# SoCo's 100-epoch data: imagenet_soco.py plus the cutout in the boxes of views 2 and 3
# (official ImageAsymBboxAwareMultiJitter1Cutout, tools/SoCo_FPN_100ep.sh: prob 0.5,
# area 0.1-0.3 of the box). The official transform crashes (docs/soco.md, B1);
# CutoutInBoxes implements it as intended.
_base_ = './imagenet_soco.py'
train_pipeline = [
    dict(type='LoadImageRGB'),
    dict(type='LoadProposals'),
    {{_base_.soco_views}},
    {{_base_.view1_colors}},
    {{_base_.view2_colors}},
    dict(type='CutoutInBoxes', views=[1, 2], prob=0.5, area_ratio=(0.1, 0.3)),
    {{_base_.pack_inputs}},
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
