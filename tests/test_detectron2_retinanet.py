"""crosscl_mm's RetinaNet pieces against detectron2 v0.3's definitions,
computed here from the modules' own tensors: LastLevelP6P7 (P6 = conv(C5),
P7 = conv(relu(P6)), no norm) and RetinaNet.losses' moving normaliser."""
import copy

import pytest
import torch
import torch.nn.functional as F


@pytest.fixture
def registry():
    """mmdet's model registry under the mmdet scope, whatever scope an earlier
    test left current (ours are built as 'crosscl_mm.X', as configs name them)."""
    from mmengine.registry import DefaultScope
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    from mmdet.registry import MODELS
    import crosscl_mm.models.retinanet  # noqa: F401  (registers ours)
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield MODELS


def conv_bn(module, x):
    """A ConvModule (conv, then BN in eval mode, no activation) by hand."""
    y = F.conv2d(x, module.conv.weight, module.conv.bias, module.conv.stride, module.conv.padding)
    bn = module.norm if getattr(module, 'with_norm', False) else None
    if bn is not None:
        y = F.batch_norm(y, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
    return y


def test_fpn_p6_p7_from_c5_without_norm(registry):
    models = registry
    torch.manual_seed(0)
    neck = models.build(dict(type='crosscl_mm.Detectron2RetinaFPN', in_channels=[8, 16, 32, 64],
                             out_channels=8, start_level=1, add_extra_convs='on_input',
                             relu_before_extra_convs=True, num_outs=5,
                             norm_cfg=dict(type='BN', requires_grad=True)))
    neck.init_weights()
    for m in neck.modules():  # non-trivial running statistics for the norms
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    neck.eval()
    p6, p7 = neck.fpn_convs[3], neck.fpn_convs[4]
    for extra in (p6, p7):  # LastLevelP6P7: nn.Conv2d(..., 3, 2, 1) with bias, nothing else
        assert not extra.with_norm and not extra.with_activation
        assert extra.conv.bias is not None and extra.conv.stride == (2, 2)
    assert p6.conv.in_channels == 64  # from C5
    assert all(m.with_norm and m.conv.bias is None for m in neck.lateral_convs)
    feats = [torch.randn(2, c, s, s) for c, s in ((8, 32), (16, 16), (32, 8), (64, 4))]
    with torch.no_grad():
        outs = neck(feats)
        # detectron2's FPN over res3-res5: laterals, top-down nearest 2x, outputs.
        lat = [conv_bn(neck.lateral_convs[i], feats[i + 1]) for i in range(3)]
        for i in (2, 1):
            lat[i - 1] = lat[i - 1] + F.interpolate(lat[i], scale_factor=2, mode='nearest')
        expected = [conv_bn(neck.fpn_convs[i], lat[i]) for i in range(3)]
        e6 = F.conv2d(feats[3], p6.conv.weight, p6.conv.bias, 2, 1)
        e7 = F.conv2d(F.relu(e6), p7.conv.weight, p7.conv.bias, 2, 1)
    for got, want in zip(outs, expected + [e6, e7]):
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def box_iou(a, b):
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None] - inter)


def test_head_divides_by_detectron2s_moving_normaliser(registry):
    """Losses = (sums over the batch) / normaliser, normaliser <- 0.9 n + 0.1
    max(num_pos, 1) from 100 (detectron2 v0.3 RetinaNet.losses); the sums are
    mmdet's RetinaHead losses times its own divisor, the batch's positives,
    counted here from the IoUs (>= 0.5, or the best anchor of a box)."""
    mmdet_models = registry
    from mmengine.structures import InstanceData
    cfg = dict(num_classes=3, in_channels=8, feat_channels=8, stacked_convs=2,
               anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4,
                                     scales_per_octave=3, ratios=[0.5, 1.0, 2.0],
                                     strides=[8, 16, 32, 64, 128]),
               bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4,
                               target_stds=[1.0] * 4),
               loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                             loss_weight=1.0),
               loss_bbox=dict(type='L1Loss', loss_weight=1.0),
               train_cfg=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5,
                                            neg_iou_thr=0.4, min_pos_iou=0, ignore_iof_thr=-1),
                              sampler=dict(type='PseudoSampler'), allowed_border=-1,
                              pos_weight=-1, debug=False))
    torch.manual_seed(0)
    head = mmdet_models.build(dict(cfg, type='crosscl_mm.Detectron2RetinaHead'))
    stock = mmdet_models.build(dict(copy.deepcopy(cfg), type='RetinaHead'))
    stock.load_state_dict(head.state_dict())
    size = 128
    metas = [dict(img_shape=(size, size), pad_shape=(size, size),
                  batch_input_shape=(size, size))] * 2
    gts = [InstanceData(bboxes=torch.tensor([[10., 12., 60., 70.], [70., 20., 120., 50.]]),
                        labels=torch.tensor([0, 2])),
           InstanceData(bboxes=torch.tensor([[30., 30., 100., 110.]]), labels=torch.tensor([1]))]
    feats = [torch.randn(2, 8, size // s, size // s) for s in (8, 16, 32, 64, 128)]
    cls_scores, bbox_preds = head(feats)
    anchors = torch.cat(head.prior_generator.grid_priors(
        [f.shape[-2:] for f in feats], device='cpu'))
    num_pos = 0
    for gt in gts:
        iou = box_iou(anchors, gt.bboxes)
        pos = iou.max(1).values >= 0.5
        pos |= (iou == iou.max(0, keepdim=True).values).any(1)
        num_pos += int(pos.sum())
    assert num_pos > 3
    normaliser = 100.0
    for _ in range(2):
        normaliser = 0.9 * normaliser + 0.1 * max(num_pos, 1)
        ours_loss = head.loss_by_feat(cls_scores, bbox_preds, gts, metas)
        stock_loss = stock.loss_by_feat(cls_scores, bbox_preds, gts, metas)
        assert head.loss_normalizer == pytest.approx(normaliser)
        for key in ('loss_cls', 'loss_bbox'):
            got = sum(ours_loss[key])
            want = sum(stock_loss[key]) * num_pos / normaliser
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
