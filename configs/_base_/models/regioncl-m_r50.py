# RegionCL-M: MoCo v2 (ResNet-50 C5, 2048-2048-128 MLP, queue 65536, momentum 0.999,
# temperature 0.2) plus the region-swap term, as the official code
# (Annbless/RegionCL regionCLM-r50.py, RegionCLM.py). Every choice: docs/regioncl.md.
model = dict(
    type='RegionCLM',
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
        out_indices=(3,),  # C5
        norm_cfg=dict(type='BN', requires_grad=True),  # plain BN, not SyncBN (recipe :13-18)
        norm_eval=False,
        style='pytorch',
        zero_init_residual=False,
        # OpenSelfSup's init: kaiming fan_in on the convs, BN 1/0 (resnet.py:390-395)
        init_cfg=[dict(type='Kaiming', layer='Conv2d', mode='fan_in'),
                  dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])]),
    # One MLP for the instance and the region features; kaiming fan_in (RegionCLM.py:74)
    neck=dict(type='GlobalProjectionNeck', in_channels=2048, hid_channels=2048, out_channels=128,
              init_cfg=dict(type='Kaiming', layer='Linear', mode='fan_in')),
    loss=dict(type='InfoNCELoss', temperature=0.2),  # both terms (head2, B1)
    # One box per step and rank, 32 x {3, 4, 5} px, the official rounded and clamped start
    # (B2, B3), the fixed reversal pairing i <-> B-1-i (RegionCLM.py:176-187).
    swap=dict(sampler='official', pairing='reversal', min_cells=3, max_cells=5, stride=32),
    paste_intra_negative='as_released',  # the same as 'corrected' under the reversal
    loss_weights=dict(loss_instance=1.0, loss_region=1.0))
