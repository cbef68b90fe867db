# SoCo-C4 (official contrast/models/SoCo_C4.py, contrast/resnet.py): ResNet-50 stages 1-3
# (mmdet, BN, zero-init of each block's last BN) give C4; the proposals are RoI-aligned
# from C4 at 14x14 (resnet.py:148-150, 224-237); the res5 stage is the box head, then a
# global average pool; projector 2048-4096-256, predictor 256-4096-256 (mlps.py:87-92);
# momentum copy of backbone, res5 and projector, momentum 0.99 -> 1.
model = dict(
    type='SoCoC4',
    base_momentum=0.99,
    roi_size=14,
    data_preprocessor=dict(
        type='RegionPairDataPreprocessor',
        mean=(123.675, 116.28, 103.53),  # RGB, the pipeline decodes to RGB
        std=(58.395, 57.12, 57.375)),
    backbone=dict(
        type='mmdet.ResNet',
        depth=50,
        num_stages=3,  # C4: res5 is the box head
        strides=(1, 2, 2),
        dilations=(1, 1, 1),
        out_indices=(2, ),
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        zero_init_residual=True),
    head=dict(type='Res5BoxHead', depth=50, base_channels=64, stride=2, style='pytorch',
              norm_cfg=dict(type='BN', requires_grad=True), zero_init_residual=True),
    projector=dict(type='ProjectionMLP', in_channels=2048, hid_channels=4096, out_channels=256),
    predictor=dict(type='ProjectionMLP', in_channels=256, hid_channels=4096, out_channels=256),
    loss=dict(type='MatchedCosineLoss'))
