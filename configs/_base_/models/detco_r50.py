# DetCo: ResNet-50 (mmdet, BN) with a global and a local (nine-patch) projection head on
# each of Res2-Res5, one global and one local queue per stage, MoCo v2's momentum and
# temperature. Every choice the paper leaves open, and its source: docs/detco.md.
model = dict(
    type='DetCo',
    queue_len=65536,
    feat_dim=128,
    momentum=0.999,
    shuffle_key_batches=True,  # MoCo's shuffle BN, for the global and the local key batch
    data_preprocessor=dict(
        type='RegionPairDataPreprocessor',
        mean=(123.675, 116.28, 103.53),  # RGB, the pipeline decodes to RGB
        std=(58.395, 57.12, 57.375)),
    backbone=dict(
        type='mmdet.ResNet',
        depth=50,
        out_indices=(0, 1, 2, 3),  # Res2, Res3, Res4, Res5
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        zero_init_residual=False),
    level_names=('res2', 'res3', 'res4', 'res5'),
    level_channels=(256, 512, 1024, 2048),
    level_weights=(0.1, 0.4, 0.7, 1.0),  # w_i of Eq. 1, on each of the stage's three terms
    # MoCo v2's Linear-ReLU-Linear heads; None: hidden width C_i at stage i.
    global_neck=dict(type='GlobalProjectionNeck', norm_cfg=None),
    local_neck=dict(type='PatchSetProjectionNeck', num_patches=9, norm_cfg=None),
    global_hid_channels=None,
    local_hid_channels=None,
    loss=dict(type='InfoNCELoss', temperature=0.2))
