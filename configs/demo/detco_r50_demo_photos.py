# `tools/demo.py --algos ... detco`: DetCo on the demo's photos with the budget of the
# CrossCL demo (crosscl_r50fpn_demo_photos.py): 96 px global views, 300 iterations of 8
# images, DetCo's lr for 256 images (0.03) scaled by the square root to 0.005, the same
# warmup and cosine, momentum 0.99, queues of 16 keys. The local views scale with the
# global ones: 108 px crops (ImageNet: 255) cut into 3x3 cells of 36 px with a 28 px
# patch in each (85 and 64). The nine patches of a set go through the ResNet-50 as images
# of their own, so an iteration costs about 1.8 of CrossCL's. Not tuned for the demo
# beyond this scaling.
_base_ = '../detco_r50_200e_in1k.py'

global_size = 96
local_size = 108
patch_size = 28
batch_size = 8
max_iters = 300
warmup_iters = 20
lr = 0.005

model = dict(queue_len=16, momentum=0.99)
# DetCo's colour augmentation (MoCo v2's), the base config's own.
color_augment = _base_.color_augment
train_dataloader = dict(
    batch_size=batch_size, num_workers=1, persistent_workers=True,
    # One endless pass over the images: mmengine restarts a finite loader with a 2 s pause,
    # every 8 iterations here.
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(data_root='work_dirs/demo/photos', pipeline=[
        dict(type='LoadImageRGB'),
        dict(type='MultiViewRandomResizedCrop',
             sizes=(global_size, global_size, local_size, local_size),  # I_q, I_k, P_q, P_k
             scales=((0.2, 1.0), (0.2, 1.0), (0.6, 1.0), (0.6, 1.0)),
             flip_prob=0.5),
        dict(color_augment, views=(0, 1)),
        dict(color_augment, views=(2, 3)),
        dict(type='JigsawPatches', views=(2, 3), grid=3, patch_size=patch_size,
             shared_order=False),
        dict(type='PackRegionPairInputs',
             meta_keys=('img_path', 'crop_boxes', 'flips', 'patch_boxes', 'patch_cells')),
    ]))
optim_wrapper = dict(optimizer=dict(lr=lr))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='CosineAnnealingLR', T_max=max_iters - warmup_iters, by_epoch=False,
         begin=warmup_iters, end=max_iters),
]
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters)
log_processor = dict(by_epoch=False)
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1))
env_cfg = dict(cudnn_benchmark=False)
randomness = dict(seed=0)
