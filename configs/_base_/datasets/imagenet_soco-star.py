# SoCo*'s data (official dataset.py:820-942, transform.py:102-124,
# tools/SoCo_FPN_Star_400ep.sh): view 3 at 192, and view 4 = view 2 resized to 112
# (its own flip and colours; its boxes are view 2's).
_base_ = './imagenet_soco.py'
train_pipeline = [
    dict(type='LoadImageRGB'),
    dict(type='LoadProposals'),
    dict(type='SoCoViews', view_sizes=(224, 224, 192), downscaled_view_size=112,
         crop_scale=(0.5, 1.0), flip_prob=0.5, select_k=4, padding_k=4, max_tries=5,
         jitter_prob=0.5, jitter_ratio=0.1, level_size_limits=(48, 96, 192, 224)),
    {{_base_.view1_colors}},
    dict(type='ViewColorAugment', views=[1, 2, 3], ops=('jitter', 'gray', 'blur', 'solarize'),
         blur_prob=0.1, solarize_prob=0.2, jitter_prob=0.8, brightness=0.4, contrast=0.4,
         saturation=0.2, hue=0.1, gray_prob=0.2, blur_sigma=(0.1, 2.0)),
    {{_base_.pack_inputs}},
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
