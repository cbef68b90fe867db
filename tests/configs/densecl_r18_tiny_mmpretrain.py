# mmpretrain's own DenseCL config, made small for CPU tests: ResNet-18 at 64 px
# on a folder of photos. Everything else is mmpretrain's (the mmpretrain
# environment's counterpart of densecl_r18_tiny_mmselfsup.py).
_base_ = 'mmpretrain::densecl/densecl_resnet50_8xb32-coslr-200e_in1k.py'
custom_imports = dict(imports=['crosscl_mm'], allow_failed_imports=False)

model = dict(
    queue_len=64,
    backbone=dict(depth=18),
    neck=dict(in_channels=512, hid_channels=512, out_channels=128))

view_pipeline = [
    dict(type='RandomResizedCrop', scale=64, crop_ratio_range=(0.2, 1.), backend='pillow'),
    dict(type='RandomApply',
         transforms=[dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4,
                          hue=0.1)],
         prob=0.8),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),
    dict(type='GaussianBlur', magnitude_range=(0.1, 2.0), magnitude_std='inf', prob=0.5),
    dict(type='RandomFlip', prob=0.5),
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(
        _delete_=True,
        type='UnlabeledImageFolder',  # crosscl_mm's, exported to the mmpretrain scope
        data_root='data/photos',
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
            dict(type='PackInputs', meta_keys=['img_path'])]))
param_scheduler = [dict(type='CosineAnnealingLR', T_max=2, by_epoch=True, begin=0, end=2)]
train_cfg = dict(max_epochs=1)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1, max_keep_ckpts=3))
