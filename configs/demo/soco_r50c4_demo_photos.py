# `tools/demo.py --algos ... soco-c4`: SoCo-C4 on the demo's photos, with the proposals that
# the demo computes for them (as for `soco`), and the budget of the CrossCL demo
# (crosscl_r50fpn_demo_photos.py): 300 iterations of 8 images, 20 of warmup, cosine.
# The 400e recipe (its cutout included) with:
#  - both views at 96 px (ImageNet: 224): C4 is 6x6, each of the 4 boxes an image is
#    RoI-aligned from it at 14x14 and run through res5; the (unused) level limits scaled as
#    in soco_r50fpn_demo_photos.py;
#  - LARS at SoCo's lr for 256 images (1.0) scaled by the square root to the batch of 8,
#    as CrossCL's: 1.0 x sqrt(8 / 256) = 0.18;
#  - momentum 0.99 -> 1 over the 300 iterations, as the recipe over its whole run.
# The demo fine-tunes Mask R-CNN R50-FPN, so the checkpoint is converted with --no-c4:
# the whole ResNet (res5 = the pretrained box head's layer4) as its backbone.
# Not tuned for the demo beyond this scaling.
_base_ = '../soco_r50c4_400e_in1k.py'

view_sizes = (96, 96)
level_size_limits = (21, 41, 82, 96)
batch_size = 8
max_iters = 300
warmup_iters = 20
lr = 0.18

train_dataloader = dict(
    batch_size=batch_size, num_workers=1, persistent_workers=True,
    # One endless pass over the images: mmengine restarts a finite loader with a 2 s pause,
    # every 8 iterations here.
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(data_root='work_dirs/demo/photos', proposals_root='work_dirs/demo/soco_proposals',
                 pipeline=[
                     dict(type='LoadImageRGB'),
                     dict(type='LoadProposals'),
                     dict(type='SoCoViews', view_sizes=view_sizes, crop_scale=(0.6, 1.0),
                          flip_prob=0.5, select_k=4, padding_k=4, max_tries=5, jitter_prob=0.0,
                          jitter_ratio=0.1, level_size_limits=level_size_limits),
                     {{_base_.view1_colors}},
                     dict(type='ViewColorAugment', views=[1],
                          ops=('jitter', 'gray', 'blur', 'solarize'), blur_prob=0.1,
                          solarize_prob=0.2, jitter_prob=0.8, brightness=0.4, contrast=0.4,
                          saturation=0.2, hue=0.1, gray_prob=0.2, blur_sigma=(0.1, 2.0)),
                     dict(type='CutoutInBoxes', views=[1], prob=0.5, area_ratio=(0.1, 0.3)),
                     {{_base_.pack_inputs}},
                 ]))
optim_wrapper = dict(optimizer=dict(lr=lr))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='CosineAnnealingLR', T_max=max_iters - warmup_iters, eta_min=1e-6,
         by_epoch=False, begin=warmup_iters, end=max_iters),
]
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters)
log_processor = dict(by_epoch=False)
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1))
env_cfg = dict(cudnn_benchmark=False)
randomness = dict(seed=0)
