# `make demo`: CrossCL on the photos that ship with scikit-image, sized for a
# 2-core CPU in minutes. Same model as the 200e ImageNet recipe (ResNet-50 +
# FPN, every term), smaller views, batch and queue.
_base_ = '../crosscl_r50fpn_200e_in1k.py'
img_size = 128
model = dict(queue_len=1024)
train_dataloader = dict(
    batch_size=4, num_workers=1, persistent_workers=True,
    dataset=dict(data_root='work_dirs/demo/photos', pipeline=[
        dict(type='LoadImageRGB'),
        dict(type='PairedRandomResizedCrop', size=img_size, scale=(0.2, 1.0), flip_prob=0.5),
        dict(type='SlidingWindowRegions'),
        dict(type='ViewColorAugment'),
        dict(type='PackRegionPairInputs'),
    ]))
optim_wrapper = dict(optimizer=dict(lr=0.03 * 8 / 256))  # lr 0.03 per 256 images
param_scheduler = [dict(type='CosineAnnealingLR', T_max=4, by_epoch=True, begin=0, end=4)]
train_cfg = dict(max_epochs=4)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2, max_keep_ckpts=2))
env_cfg = dict(cudnn_benchmark=False)
randomness = dict(seed=0)
