# `tools/demo.py --algos ... regioncl-d`: RegionCL-D on the demo's photos with the budget of
# the CrossCL demo (crosscl_r50fpn_demo_photos.py): 96 px views, 300 iterations of 8 images,
# the recipe's lr (0.03 for 256 images) scaled by the square root to 0.005, the same warmup
# and cosine, momentum 0.99, two queues of 16 keys, float32. The boxes scale with the views:
# 1-2 cells of 32 px on the 3x3 C5 map of a 96 px view (the recipe's 3-5 cells need more
# than 5 cells per side, 192 px). Not tuned for the demo beyond this scaling.
_base_ = '../regioncl-d_r50_200e_in1k.py'

img_size = 96
batch_size = 8
max_iters = 300
warmup_iters = 20
lr = 0.005

model = dict(queue_len=16, momentum=0.99, swap=dict(min_cells=1, max_cells=2))
color_augment = _base_.color_augment  # MoCo v2's, the base config's own
train_dataloader = dict(
    batch_size=batch_size, num_workers=1, persistent_workers=True,
    # One endless pass over the images: mmengine restarts a finite loader with a 2 s pause.
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(data_root='work_dirs/demo/photos', pipeline=[
        dict(type='LoadImageRGB'),
        dict(type='MultiViewRandomResizedCrop', sizes=(img_size, img_size),
             scales=((0.2, 1.0), (0.2, 1.0)), flip_prob=0.5),
        color_augment,
        dict(type='PackRegionPairInputs', meta_keys=('img_path', 'crop_boxes', 'flips')),
    ]))
# float32, as the other demo pretrainings (the recipe's float16 needs CUDA)
optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=lr, momentum=0.9, weight_decay=1e-4))
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
