# `tools/demo.py --algos ... soco`: SoCo on the demo's photos, with proposals that the
# demo computes for them (tools/misc/generate_proposals.py PHOTOS PROPOSALS), and the
# budget of the CrossCL demo (crosscl_r50fpn_demo_photos.py): 300 iterations of 8
# images, 20 of warmup, cosine. The 400e recipe (no cutout) with:
#  - views of 96, 96 and 48 px (ImageNet: 224, 224, 112) and the FPN level limits
#    scaled with them: 48, 96, 192, 224 x 96 / 224 -> 21, 41, 82, 96;
#  - the box head at the demo fine-tuning's widths (configs/demo/mask-rcnn_r50-fpn_demo_
#    shapes.py: 4 convs of 64 channels, fc 256; the recipe: 256, 1024), so that it
#    transfers with --with-box-head; every box is pooled on all four levels, and 4 box
#    sets x 4 boxes x 4 levels = 64 RoIs per image go through it twice (online, target);
#  - LARS at SoCo's lr for 256 images (1.0) scaled by the square root to the batch of 8,
#    as CrossCL's: 1.0 x sqrt(8 / 256) = 0.18;
#  - momentum 0.99 -> 1 over the 300 iterations, as the recipe over its whole run.
# Not tuned for the demo beyond this scaling.
_base_ = '../soco_r50fpn_400e_in1k.py'

view_sizes = (96, 96, 48)
level_size_limits = (21, 41, 82, 96)
box_head_conv_channels = 64
box_head_fc_channels = 256
batch_size = 8
max_iters = 300
warmup_iters = 20
lr = 0.18

model = dict(
    head=dict(conv_channels=box_head_conv_channels, fc_channels=box_head_fc_channels),
    projector=dict(in_channels=box_head_fc_channels))
train_dataloader = dict(
    batch_size=batch_size, num_workers=1, persistent_workers=True,
    # One endless pass over the images: mmengine restarts a finite loader with a 2 s pause,
    # every 8 iterations here.
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(data_root='work_dirs/demo/photos', proposals_root='work_dirs/demo/soco_proposals',
                 pipeline=[
                     dict(type='LoadImageRGB'),
                     dict(type='LoadProposals'),
                     dict(type='SoCoViews', view_sizes=view_sizes, crop_scale=(0.5, 1.0),
                          flip_prob=0.5, select_k=4, padding_k=4, max_tries=5, jitter_prob=0.5,
                          jitter_ratio=0.1, level_size_limits=level_size_limits),
                     {{_base_.view1_colors}},
                     {{_base_.view2_colors}},
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
