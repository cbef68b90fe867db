# Unlabelled images from a folder (recursive), two views with a shared flip,
# sliding-window regions mapped between the views.
dataset_type = 'UnlabeledImageFolder'
data_root = 'data/imagenet/train/'
img_size = 224

train_pipeline = [
    dict(type='LoadImageRGB'),
    dict(type='PairedRandomResizedCrop', size=img_size, scale=(0.2, 1.0), flip_prob=0.5),
    dict(type='SlidingWindowRegions',
         windows=dict(p4=dict(window=48, stride=32, grid=6),
                      p3=dict(window=48, stride=32, grid=6)),
         base_size=224),
    dict(type='ViewColorAugment', blur_prob=0.5, blur_sigma=(0.1, 2.0), jitter_prob=0.8,
         brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1, gray_prob=0.2),
    dict(type='PackRegionPairInputs'),
]

train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    drop_last=True,  # shuffle BN needs equal batches on every rank
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, pipeline=train_pipeline))
