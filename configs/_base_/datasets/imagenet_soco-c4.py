# SoCo-C4's data (official ImageFolderImageAsymBboxCutout, contrast/data/dataset.py:403-500;
# transform.py:29-50; tools/SoCo_C4_{100,400}ep.sh: --crop 0.6, cutout prob 0.5, area
# 0.1-0.3): view 1 the whole image, view 2 one random crop (scale 0.6-1), both 224 px, each
# flipped on its own; up to 4 proposals shared by both views, not jittered (the C4 dataset
# never calls jitter_props), padded to 4; BYOL's colours; a cut-out square in some of
# view 2's boxes. The official cutout call fails at HEAD (docs/soco.md, B11);
# CutoutInBoxes implements it as intended, after view 2's flip.
_base_ = './imagenet_soco.py'
train_pipeline = [
    dict(type='LoadImageRGB'),
    dict(type='LoadProposals'),
    dict(type='SoCoViews', view_sizes=(224, 224), crop_scale=(0.6, 1.0), flip_prob=0.5,
         select_k=4, padding_k=4, max_tries=5, jitter_prob=0.0, jitter_ratio=0.1,
         level_size_limits=(48, 96, 192, 224)),  # levels: unused by SoCo-C4
    {{_base_.view1_colors}},
    dict(type='ViewColorAugment', views=[1], ops=('jitter', 'gray', 'blur', 'solarize'),
         blur_prob=0.1, solarize_prob=0.2, jitter_prob=0.8, brightness=0.4, contrast=0.4,
         saturation=0.2, hue=0.1, gray_prob=0.2, blur_sigma=(0.1, 2.0)),
    dict(type='CutoutInBoxes', views=[1], prob=0.5, area_ratio=(0.1, 0.3)),
    {{_base_.pack_inputs}},
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
