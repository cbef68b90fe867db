_base_ = './crosscl_r50fpn_200e_in1k.py'
# Ablation: ReSim, the parent method. No cross-stage terms, and P3 uses its
# own windows of 32 at stride 24 (8x8 = 64 per image at 224).
model = dict(loss_weights=dict(loss_p4_p3=0, loss_p3_p4=0))
train_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadImageRGB'),
    dict(type='PairedRandomResizedCrop', size=224, scale=(0.2, 1.0), flip_prob=0.5),
    dict(type='SlidingWindowRegions',
         windows=dict(p4=dict(window=48, stride=32, grid=6),
                      p3=dict(window=32, stride=24, grid=8)),
         base_size=224),
    dict(type='ViewColorAugment'),
    dict(type='PackRegionPairInputs'),
]))
