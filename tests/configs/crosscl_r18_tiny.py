# A CrossCL run small enough for CPU tests: ResNet-18 at 64 px, a short queue.
_base_ = '../../configs/crosscl_r50fpn_200e_in1k.py'
img_size = 64
model = dict(
    queue_len=256,
    backbone=dict(depth=18),
    neck=dict(in_channels=512, hid_channels=512, out_channels=128),
    fpn=dict(in_channels=(128, 256, 512), out_channels=64))
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(pipeline=[
        dict(type='LoadImageRGB'),
        dict(type='PairedRandomResizedCrop', size=img_size, scale=(0.2, 1.0), flip_prob=0.5),
        dict(type='SlidingWindowRegions'),
        dict(type='ViewColorAugment'),
        dict(type='PackRegionPairInputs'),
    ]))
param_scheduler = [dict(type='CosineAnnealingLR', T_max=2, by_epoch=True, begin=0, end=2)]
train_cfg = dict(max_epochs=1)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1, max_keep_ckpts=3))
env_cfg = dict(cudnn_benchmark=False)
