# SoCo (official contrast/models/SoCo_FPN.py): ResNet-50 (mmdet, BN, zero-init of each
# block's last BN) + FPN P2-P5 with BN in the lateral and output convs, a 4conv-1fc box
# head with BN, projector 1024-4096-256 and predictor 256-4096-256; momentum 0.99 -> 1.
model = dict(
    type='SoCo',
    base_momentum=0.99,
    roi_size=7,
    head_batching='per_level',  # BN statistics per (box set, FPN level), as official
    data_preprocessor=dict(
        type='RegionPairDataPreprocessor',
        mean=(123.675, 116.28, 103.53),  # RGB, the pipeline decodes to RGB
        std=(58.395, 57.12, 57.375)),
    backbone=dict(
        type='mmdet.ResNet',
        depth=50,
        out_indices=(0, 1, 2, 3),  # C2-C5
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        zero_init_residual=True),
    neck=dict(
        type='mmdet.FPN',
        in_channels=[256, 512, 1024, 2048],
        out_channels=256,
        num_outs=4,  # P2-P5, no extra level
        norm_cfg=dict(type='BN', requires_grad=True),
        init_cfg=None),  # ConvModule's kaiming init, as official (FPN.init_weights never runs)
    head=dict(type='ConvFCBoxHead', in_channels=256, conv_channels=256, num_convs=4,
              roi_size=7, fc_channels=1024, norm_cfg=dict(type='BN')),
    projector=dict(type='ProjectionMLP', in_channels=1024, hid_channels=4096, out_channels=256),
    predictor=dict(type='ProjectionMLP', in_channels=256, hid_channels=4096, out_channels=256),
    loss=dict(type='MatchedCosineLoss'))
