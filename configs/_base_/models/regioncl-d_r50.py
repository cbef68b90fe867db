# RegionCL-D: DenseCL (ResNet-50 C5, global 2048-2048-128 MLP, dense 1x1-conv head, two
# queues of 65536, dense positives by argmax cosine of backbone features) plus the
# region-swap term on global features, as the only public code ran it (CoinCheung/DenseCL
# --cutmix: builder.py, cutmix.py, resnet.py, main_densecl.py). Choices: docs/regioncl.md.
model = dict(
    type='RegionCLD',
    queue_len=65536,
    feat_dim=128,
    momentum=0.999,
    data_preprocessor=dict(
        type='RegionPairDataPreprocessor',
        mean=(123.675, 116.28, 103.53),
        std=(58.395, 57.12, 57.375)),
    backbone=dict(
        type='mmdet.ResNet',
        depth=50,
        out_indices=(3,),  # C5
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        zero_init_residual=False),  # torchvision's init (kaiming fan_out), as resnet.py:165-170
    neck=dict(type='GlobalProjectionNeck', in_channels=2048, hid_channels=2048, out_channels=128),
    dense_neck=dict(type='DenseProjectionNeck', in_channels=2048, hid_channels=2048,
                    out_channels=128,
                    init_cfg=dict(type='Kaiming', layer='Conv2d', mode='fan_out')),
    loss=dict(type='InfoNCELoss', temperature=0.2),  # --moco-t 0.2, every term
    # One box per step and rank: 3-5 cells on the 32 px grid, never the last row or column;
    # a random permutation pairs the images (cutmix.py:21-34).
    swap=dict(sampler='grid', pairing='random', min_cells=3, max_cells=5, stride=32),
    # cutmix.py:50's c[perm]; 'corrected' takes the canvas the paste lies on.
    paste_intra_negative='as_released',
    loss_weights=dict(loss_global=0.5, loss_dense=0.5, loss_region=1.0))
