# CrossCL: ResNet-50 (mmdet, BN) + global MoCo v2 projection + top-down FPN (P4, P3).
model = dict(
    type='CrossCL',
    queue_len=65536,
    feat_dim=128,
    momentum=0.999,
    data_preprocessor=dict(
        type='RegionPairDataPreprocessor',
        mean=(123.675, 116.28, 103.53),  # RGB, the pipeline decodes to RGB
        std=(58.395, 57.12, 57.375)),
    backbone=dict(
        type='mmdet.ResNet',
        depth=50,
        out_indices=(1, 2, 3),  # C3, C4, C5
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        zero_init_residual=False),  # torchvision's init, as the reference
    neck=dict(type='GlobalProjectionNeck', in_channels=2048, hid_channels=2048, out_channels=128),
    fpn=dict(type='TopDownFPN', in_channels=(512, 1024, 2048), out_channels=256, norm_cfg=None),
    loss=dict(type='InfoNCELoss', temperature=0.2),
    region_levels=(('p3', 8), ('p4', 16)),
    loss_weights=dict(loss_global=1.0, loss_p4=1.0, loss_p3=1.0, loss_p4_p3=1.0, loss_p3_p4=1.0),
    gather_negatives=dict(p4=True, p3=False))
