# `make demo`: CrossCL pretrained on the photos that ship with scikit-image (those the
# demo holds out for its retrieval measurement excluded; tools/demo.py cuts the other 17
# into 2x2 tiles, 68 images), sized so that a 2-core CPU trains it in minutes and its
# losses fall. The 200e ImageNet model (ResNet-50 + FPN,
# every term, temperature 0.2) with:
#  - 96 px views (ImageNet: 224); the 6x6 windows scale with the view;
#  - 300 iterations of 8 images (the old demo: 30 of 4, whose loss rose from 25.6 to
#    27.5, mostly its 1024-key queue filling up);
#  - SGD lr 0.005: MoCo v2's 0.03 for 256 images scaled to the batch of 8 by the square
#    root (0.03 x sqrt(8 / 256) = 0.0053). Linear scaling (9.4e-4) leaves the weights
#    where they started in a few hundred iterations; 0.03 made every region accuracy fall
#    to 0-2% by iteration 80; 0.003 and 0.01 both lowered the loss (README, Measured);
#    20 iterations of linear warmup from lr / 10, then cosine to 0, per iteration;
#  - key-encoder momentum 0.99 (ImageNet: 0.999, which in 300 iterations would keep the
#    key encoder near its random init);
#  - a queue of 16 keys, two batches: with 68 images a query's own image is rarely in
#    it (a longer queue, or 17 whole photos, would hold keys of it as negatives).
_base_ = '../crosscl_r50fpn_200e_in1k.py'

img_size = 96
batch_size = 8
max_iters = 300
warmup_iters = 20
lr = 0.005

model = dict(queue_len=16, momentum=0.99)
train_dataloader = dict(
    batch_size=batch_size, num_workers=1, persistent_workers=True,
    # One endless pass over the images: mmengine restarts a finite loader with a 2 s pause,
    # every 8 iterations here.
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(data_root='work_dirs/demo/photos', pipeline=[
        dict(type='LoadImageRGB'),
        dict(type='PairedRandomResizedCrop', size=img_size, scale=(0.2, 1.0), flip_prob=0.5),
        dict(type='SlidingWindowRegions'),
        dict(type='ViewColorAugment'),
        dict(type='PackRegionPairInputs'),
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
