"""The CrossCL algorithm: losses against an independent re-derivation of the
reference's computation, queue, momentum, invalid regions, overfitting."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import BaseDataElement, InstanceData

import crosscl_mm  # noqa: F401
from crosscl_mm.datasets.geometry import boxes_inside_view, map_boxes_between_crops, sliding_windows
from crosscl_mm.models.utils import negative_pool_geometry, prroi_pool_1x1
from crosscl_mm.registry import MODELS

SIZE = 64


def tiny_model_cfg(**overrides):
    cfg = dict(
        type='CrossCL', queue_len=32, feat_dim=16, momentum=0.99,
        backbone=dict(type='mmdet.ResNet', depth=18, out_indices=(1, 2, 3),
                      norm_cfg=dict(type='BN'), zero_init_residual=False),
        neck=dict(type='GlobalProjectionNeck', in_channels=512, hid_channels=64, out_channels=16),
        fpn=dict(type='TopDownFPN', in_channels=(128, 256, 512), out_channels=32))
    cfg.update(overrides)
    return cfg


def build(**overrides):
    torch.manual_seed(0)
    model = MODELS.build(tiny_model_cfg(**overrides))
    model.init_weights()
    return model


def make_samples(n, size=SIZE, seed=0, all_invalid=False):
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n):
        w, h = 300, 240
        crops = []
        for _ in range(2):
            cw, ch = rng.integers(80, 240), rng.integers(80, 200)
            x, y = rng.integers(0, w - cw), rng.integers(0, h - ch)
            crops.append(np.array([x, y, x + cw, y + ch], dtype=np.float64))
        if all_invalid:  # disjoint crops: nothing of the query is in the key view
            crops = [np.array([0, 0, 100, 100.]), np.array([150, 120, 250, 220.])]
        sample = BaseDataElement()
        f = size / 224
        for lvl in ('p4', 'p3'):
            q = sliding_windows(size, 48 * f, 32 * f)
            k = map_boxes_between_crops(q, crops[0], crops[1], size)
            sample.set_field(InstanceData(query_boxes=torch.tensor(q, dtype=torch.float32),
                                          key_boxes=torch.tensor(k, dtype=torch.float32),
                                          valid=torch.tensor(boxes_inside_view(k, size))),
                             f'regions_{lvl}')
        samples.append(sample)
    return samples


def make_inputs(n, size=SIZE, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, 3, size, size, generator=g), torch.randn(n, 3, size, size, generator=g)]


def reference_losses(model, inputs, samples, queue):
    """The reference's forward (github yanjk3/CrossCL, crosscl/builder.py),
    re-derived from its equations on our modules: einsum logits, fake boxes
    and label -1 for invalid regions, nn.CrossEntropyLoss(ignore_index=-1)."""
    T = 0.2
    enc_q = model._online_encoder()
    enc_k = model.momentum_encoder.module

    def encode(enc, x):
        c3, c4, c5 = enc['backbone'](x)
        g = F.normalize(enc['neck'](c5), dim=1)
        p3, p4 = enc['fpn']((c3, c4, c5))
        return g, p4, p3

    def logits(q, k, neg):
        l_pos = torch.einsum('nc,nc->n', [q, k]).unsqueeze(-1)
        l_neg = torch.einsum('nc,ck->nk', [q, neg])
        return torch.cat([l_pos, l_neg], dim=1) / T

    q, p4_q, p3_q = encode(enc_q, inputs[0])
    with torch.no_grad():
        k, p4_k, p3_k = encode(enc_k, inputs[1])
        kern, stride = negative_pool_geometry(inputs[0].shape[-1])
        neg_p4 = F.normalize(F.avg_pool2d(p4_k, kern, stride=stride), dim=1)
        neg_p4 = neg_p4.transpose(1, 0).contiguous().view(p4_k.shape[1], -1)
        neg_p3 = F.normalize(F.avg_pool2d(p3_k, kern, stride=stride), dim=1)
        neg_p3 = neg_p3.transpose(1, 0).contiguous().view(p3_k.shape[1], -1)
    ac_q = torch.stack([s.regions_p4.query_boxes for s in samples])
    ac_k = torch.stack([s.regions_p4.key_boxes for s in samples]).clone()
    valid = torch.stack([s.regions_p4.valid for s in samples])
    ac_k[~valid] = torch.tensor([0., 0., 1., 1.])  # the reference's fake anchor
    labels = torch.where(valid, 0, -1).view(-1)

    def pool(feat, boxes, scale):
        return F.normalize(prroi_pool_1x1(feat, boxes, scale).flatten(0, 1), dim=1)

    r_p4_q, r_p3_q = pool(p4_q, ac_q, 1 / 16), pool(p3_q, ac_q, 1 / 8)
    with torch.no_grad():
        pos_p4, pos_p3 = pool(p4_k, ac_k, 1 / 16), pool(p3_k, ac_k, 1 / 8)
    ce = torch.nn.CrossEntropyLoss(ignore_index=-1)
    target = torch.zeros(q.shape[0], dtype=torch.long)
    return {
        'loss_global': ce(logits(q, k, queue), target),
        'loss_p4': ce(logits(r_p4_q, pos_p4, neg_p4), labels),
        'loss_p3': ce(logits(r_p3_q, pos_p3, neg_p3), labels),
        'loss_p4_p3': ce(logits(r_p4_q, pos_p3, neg_p3), labels),
        'loss_p3_p4': ce(logits(r_p3_q, pos_p4, neg_p4), labels),
    }


@pytest.mark.parametrize('size', [64, 96])
def test_losses_match_the_reference_computation(size):
    model = build()
    model.train()
    inputs, samples = make_inputs(3, size), make_samples(3, size)
    queue = model.queue.keys.clone()
    # The momentum encoder starts equal to the online one (first update copies).
    model.momentum_encoder.update_parameters(model._online_encoder())
    reference_model = copy.deepcopy(model)
    model.momentum_encoder.steps.zero_()
    ours = model.loss(inputs, samples)
    expected = reference_losses(reference_model, inputs, samples, queue)
    assert set(expected) <= set(ours)
    assert {'acc_global', 'acc_p4', 'acc_p3', 'acc_p4_p3', 'acc_p3_p4'} <= set(ours)
    for name, value in expected.items():
        torch.testing.assert_close(ours[name], value, rtol=1e-5, atol=1e-5, msg=name)
        assert torch.isfinite(ours[name])


def test_all_invalid_batch_gives_finite_zero_region_losses_with_gradient():
    model = build()
    losses = model.loss(make_inputs(2), make_samples(2, all_invalid=True))
    for name in ('loss_p4', 'loss_p3', 'loss_p4_p3', 'loss_p3_p4'):
        assert torch.isfinite(losses[name]) and losses[name].item() == 0.0
    total = sum(v for k, v in losses.items() if k.startswith('loss'))
    assert torch.isfinite(total)
    total.backward()
    grads = [p.grad for p in model.backbone.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize('batch', [1, 3, 5, 7])
def test_queue_pointer_wraps_with_any_batch_size(batch):
    model = build(queue_len=8)
    written = []
    for step in range(5):
        keys = F.normalize(torch.randn(batch, 16), dim=1)
        ptr = int(model.queue.ptr)
        model.queue.push(keys)
        kept = keys[-8:]
        start = ptr + (batch - kept.shape[0])
        for i in range(kept.shape[0]):
            torch.testing.assert_close(model.queue.keys[:, (start + i) % 8], kept[i])
        assert int(model.queue.ptr) == (ptr + batch) % 8
        written.append(batch)
    assert int(model.queue.ptr) == sum(written) % 8


def test_momentum_update_arithmetic():
    model = build(momentum=0.9)
    online = model._online_encoder()
    model.momentum_encoder.update_parameters(online)  # step 0 copies
    before = {k: v.clone() for k, v in model.momentum_encoder.module.named_parameters()}
    with torch.no_grad():
        for p in model._online_encoder().parameters():
            p.add_(0.5)
    model.momentum_encoder.update_parameters(model._online_encoder())
    online_params = dict(model._online_encoder().named_parameters())
    for name, param in model.momentum_encoder.module.named_parameters():
        expected = 0.9 * before[name] + 0.1 * online_params[name]
        torch.testing.assert_close(param, expected)
    assert not any(p.requires_grad for p in model.momentum_encoder.parameters())


def test_negative_pool_geometry_matches_the_reference_table():
    assert negative_pool_geometry(224) == (3, 1)
    assert negative_pool_geometry(384) == (4, 2)
    assert negative_pool_geometry(480) == (5, 2)


def test_global_only_ablation_has_no_fpn_and_only_the_global_term():
    model = build(fpn=None, loss_weights=dict(loss_global=1.0, loss_p4=0))
    assert model.fpn is None
    losses = model.loss(make_inputs(2), make_samples(2))
    assert set(losses) == {'loss_global', 'acc_global'}


def test_bad_loss_weight_names_fail_clearly():
    with pytest.raises(ValueError, match='p5'):
        build(loss_weights=dict(loss_global=1.0, loss_p5=1.0))


def real_batch(n, size):
    """A batch of real photos through the training pipeline (without colour
    augmentation), preprocessed as the model receives it."""
    from mmengine.dataset import Compose, pseudo_collate
    from crosscl_mm.registry import TRANSFORMS
    from conftest import PHOTOS, skimage_photo
    torch.manual_seed(0)
    pipeline = Compose([TRANSFORMS.build(dict(type='LoadImageRGB')),
                        TRANSFORMS.build(dict(type='PairedRandomResizedCrop', size=size,
                                              scale=(0.5, 1.0))),
                        TRANSFORMS.build(dict(type='SlidingWindowRegions')),
                        TRANSFORMS.build(dict(type='PackRegionPairInputs'))])
    batch = pseudo_collate([pipeline(dict(img_path=skimage_photo(PHOTOS[i]))) for i in range(n)])
    pre = MODELS.build(dict(type='RegionPairDataPreprocessor'))
    return pre(batch, training=True)


def test_fixed_batch_overfits():
    model = build(queue_len=64, momentum=0.9)
    model.train()
    data = real_batch(4, 96)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1, momentum=0.9)
    history = []
    for _ in range(20):
        losses = model.loss(data['inputs'], data['data_samples'])
        total = sum(v for k, v in losses.items() if k.startswith('loss'))
        opt.zero_grad()
        total.backward()
        opt.step()
        history.append({k: v.item() for k, v in losses.items()})
    regional = [sum(h[k] for k in ('loss_p4', 'loss_p3', 'loss_p4_p3', 'loss_p3_p4'))
                for h in history]
    assert np.mean(regional[-3:]) < 0.92 * np.mean(regional[:3]), regional
    acc = [h['acc_p4'] for h in history]
    assert np.mean(acc[-3:]) > np.mean(acc[:3]) + 10, acc


def test_fpn_init_and_structure_match_detectron2():
    fpn = MODELS.build(dict(type='TopDownFPN', in_channels=(512, 1024, 2048), out_channels=256))
    fpn.init_weights()
    assert len(fpn.lateral_convs) == 3 and len(fpn.fpn_convs) == 2
    for conv in [m.conv for m in list(fpn.lateral_convs) + list(fpn.fpn_convs)]:
        fan_in = conv.weight[0].numel()
        bound = (3.0 / fan_in) ** 0.5  # kaiming_uniform(a=1)
        assert conv.weight.abs().max() <= bound
        assert conv.weight.abs().max() > 0.95 * bound
        assert conv.weight.std().item() == pytest.approx(bound / 3 ** 0.5, rel=0.05)
        assert torch.all(conv.bias == 0)
    # The top-down computation, written out as in detectron2/the reference.
    c3, c4, c5 = torch.randn(1, 512, 8, 8), torch.randn(1, 1024, 4, 4), torch.randn(1, 2048, 2, 2)
    p3, p4 = fpn((c3, c4, c5))
    lat = [m.conv for m in fpn.lateral_convs]
    out = [m.conv for m in fpn.fpn_convs]
    prev = lat[2](c5)
    prev = lat[1](c4) + F.interpolate(prev, scale_factor=2.0, mode='nearest')
    torch.testing.assert_close(p4, out[1](prev))
    prev = lat[0](c3) + F.interpolate(prev, scale_factor=2.0, mode='nearest')
    torch.testing.assert_close(p3, out[0](prev))


def test_fpn_with_norm_has_no_bias_and_handles_odd_sizes():
    fpn = MODELS.build(dict(type='TopDownFPN', in_channels=(8, 16, 32), out_channels=8,
                            norm_cfg=dict(type='BN')))
    assert all(m.conv.bias is None and m.norm is not None for m in fpn.lateral_convs)
    p3, p4 = fpn((torch.randn(2, 8, 25, 25), torch.randn(2, 16, 13, 13), torch.randn(2, 32, 7, 7)))
    assert p3.shape == (2, 8, 25, 25) and p4.shape == (2, 8, 13, 13)
