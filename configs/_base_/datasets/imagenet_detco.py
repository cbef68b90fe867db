# Unlabelled images from a folder (recursive). Per image: two global views I_q, I_k
# (MoCo v2's augmentation at 224 px, each its own crop and flip) and two local patch
# sets P_q, P_k (a crop of at least 60% of the image at 255 px with the same flip and
# colour augmentation, a 3x3 grid of 85 px cells, a random 64 px patch per cell, the
# nine patches shuffled): DetCo paper section 3.4.
dataset_type = 'UnlabeledImageFolder'
data_root = 'data/imagenet/train/'
global_size = 224
local_size = 255
patch_size = 64

# MoCo v2's colour augmentation as in OpenSelfSup, the codebase DetCo was built on (paper
# 3.4): configs/selfsup/moco/r50_v2.py:33-53 @1db69ec, ColorJitter(0.4, 0.4, 0.4, 0.1)
# p 0.8, then RandomGrayscale 0.2, then PIL GaussianBlur sigma U(0.1, 2) p 0.5 (hue 0.1
# since its commit bc05268 "fix moco v2 hue", 2020-09, before DetCo's arXiv v1). The local
# crops share its parameters (paper 3.4). CrossCL's order (blur first):
# detco_r50_200e_in1k_blur-first.py.
color_augment = dict(type='ViewColorAugment', ops=('jitter', 'gray', 'blur'),
                     jitter_prob=0.8, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1,
                     gray_prob=0.2, blur_prob=0.5, blur_sigma=(0.1, 2.0))

train_pipeline = [
    dict(type='LoadImageRGB'),
    dict(type='MultiViewRandomResizedCrop',
         sizes=(global_size, global_size, local_size, local_size),  # I_q, I_k, P_q, P_k
         scales=((0.2, 1.0), (0.2, 1.0), (0.6, 1.0), (0.6, 1.0)),
         flip_prob=0.5),
    # RandAugment on the global views: configs/detco_r50_200e_in1k_randaug.py.
    dict(color_augment, views=(0, 1)),
    # Once per 255 px local crop, before the cut; after JigsawPatches it would draw per patch.
    dict(color_augment, views=(2, 3)),
    dict(type='JigsawPatches', views=(2, 3), grid=3, patch_size=patch_size, shared_order=False),
    dict(type='PackRegionPairInputs',
         meta_keys=('img_path', 'crop_boxes', 'flips', 'patch_boxes', 'patch_cells')),
]

train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    drop_last=True,  # shuffle BN needs equal batches on every rank
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, pipeline=train_pipeline))
