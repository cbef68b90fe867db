# Unlabelled images from a folder (recursive), MoCo v2's two views: each its own
# RandomResizedCrop (scale 0.2-1) and flip, then ColorJitter(0.4, 0.4, 0.4, 0.1) with p 0.8,
# grayscale with p 0.2, Gaussian blur (sigma 0.1-2) with p 0.5, in that order, drawn per
# view (RegionCL official recipe regionCLM-r50.py:35-63; CoinCheung/DenseCL --aug-plus,
# main_densecl.py:234-246). The flip comes first here; the colour ops do not care.
dataset_type = 'UnlabeledImageFolder'
data_root = 'data/imagenet/train/'
img_size = 224

color_augment = dict(type='ViewColorAugment', ops=('jitter', 'gray', 'blur'), jitter_prob=0.8,
                     brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1, gray_prob=0.2,
                     blur_prob=0.5, blur_sigma=(0.1, 2.0))

train_pipeline = [
    dict(type='LoadImageRGB'),
    dict(type='MultiViewRandomResizedCrop', sizes=(img_size, img_size),
         scales=((0.2, 1.0), (0.2, 1.0)), flip_prob=0.5),
    color_augment,
    dict(type='PackRegionPairInputs', meta_keys=('img_path', 'crop_boxes', 'flips')),
]

train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    drop_last=True,  # shuffle BN and the queue need equal batches on every rank
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, pipeline=train_pipeline))
