# SoCo's data (official contrast/data/dataset.py:536-641, transform.py:53-74): every image
# with its selective-search proposals (train_dataloader.dataset.proposals_root, written by
# tools/misc/generate_proposals.py DATA_ROOT PROPOSALS_ROOT); view 1 the whole image,
# views 2 and 3 random crops, each flipped on its own; up to 4 proposals per pair.
dataset_type = 'ProposalsFolder'
data_root = 'data/imagenet/train/'
proposals_root = 'data/imagenet/soco_proposals/'

# BYOL's photometric ops, in the official order; view 1 always blurred, views 2+ rarely
# blurred and sometimes solarized.
color_jitter = dict(jitter_prob=0.8, brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1,
                    gray_prob=0.2, blur_sigma=(0.1, 2.0))
view1_colors = dict(type='ViewColorAugment', views=[0], ops=('jitter', 'gray', 'blur'),
                    blur_prob=1.0, **color_jitter)
view2_colors = dict(type='ViewColorAugment', views=[1, 2],
                    ops=('jitter', 'gray', 'blur', 'solarize'), blur_prob=0.1,
                    solarize_prob=0.2, **color_jitter)
soco_views = dict(type='SoCoViews', view_sizes=(224, 224, 112), crop_scale=(0.5, 1.0),
                  flip_prob=0.5, select_k=4, padding_k=4, max_tries=5, jitter_prob=0.5,
                  jitter_ratio=0.1, level_size_limits=(48, 96, 192, 224))
pack_inputs = dict(type='PackRegionPairInputs',
                   meta_keys=('img_path', 'crop_boxes', 'flips', 'view_sizes'))
train_pipeline = [
    dict(type='LoadImageRGB'),
    dict(type='LoadProposals'),
    soco_views,
    view1_colors,
    view2_colors,
    pack_inputs,
]

train_dataloader = dict(
    batch_size=128,
    num_workers=8,
    drop_last=True,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, proposals_root=proposals_root,
                 pipeline=train_pipeline))
