"""The CrossCL algorithm: losses against an independent re-derivation of the
reference's computation, queue, momentum, invalid regions, overfitting."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import crosscl_mm  # noqa: F401
from crosscl_mm.models.utils import KeyQueue, negative_pool_geometry
from crosscl_mm.registry import MODELS

import crosscl_reference as ref

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


CROSSCL_WINDOWS = dict(p4=dict(window=48, stride=32, grid=6), p3=dict(window=48, stride=32, grid=6))
# ReSim's P3 lattice: different windows per level, so pooling one level's
# regions with the other level's boxes cannot go unnoticed.
RESIM_P3_WINDOWS = dict(p4=dict(window=48, stride=32, grid=6),
                        p3=dict(window=32, stride=24, grid=8))


def random_crop_pairs(n, seed=0, all_invalid=False):
    """Integer crop boxes ``(l, t, r, b)`` of a 300 x 240 image, two per image."""
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n):
        if all_invalid:  # disjoint crops: nothing of the query is in the key view
            pairs.append(((0, 0, 100, 100), (150, 120, 250, 220)))
            continue
        crops = []
        for _ in range(2):
            cw, ch = int(rng.integers(80, 240)), int(rng.integers(80, 200))
            x, y = int(rng.integers(0, 300 - cw)), int(rng.integers(0, 240 - ch))
            crops.append((x, y, x + cw, y + ch))
        pairs.append(tuple(crops))
    return pairs


def samples_from_crops(pairs, size=SIZE, windows=CROSSCL_WINDOWS):
    """Data samples as the training pipeline makes them from recorded crops."""
    from mmengine.dataset import Compose
    from crosscl_mm.registry import TRANSFORMS
    pipeline = Compose([TRANSFORMS.build(dict(type='SlidingWindowRegions', windows=windows)),
                        TRANSFORMS.build(dict(type='PackRegionPairInputs'))])
    blank = np.zeros((size, size, 3), dtype=np.uint8)
    return [pipeline(dict(img=[blank, blank], view_size=size,
                          crop_boxes=np.array(pair, dtype=np.float64)))['data_samples']
            for pair in pairs]


def make_samples(n, size=SIZE, seed=0, all_invalid=False):
    return samples_from_crops(random_crop_pairs(n, seed, all_invalid), size)


def make_inputs(n, size=SIZE, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, 3, size, size, generator=g), torch.randn(n, 3, size, size, generator=g)]


# The reference's negative pooling (crosscl/builder.py:150-166) is defined at
# 224, 384 and 480 only; at the test sizes its generalisation pools every cell.
REFERENCE_NEG_POOL = {224: (3, 1), 384: (4, 2), 480: (5, 2), 64: (1, 1), 96: (1, 1)}


def reference_losses(model, inputs, pairs, windows, queue):
    """The reference's forward (crosscl/builder.py:122-206, main_crosscl.py:
    376-412) on our encoder modules, with windows, box mapping, precise RoI
    pooling and the losses written in tests/crosscl_reference.py from the
    official definitions (nothing of crosscl_mm's geometry, pooling or loss).
    With different windows per level, each term uses its query level's
    windows, seen on its key level."""
    T = 0.2
    size = inputs[0].shape[-1]
    enc_q = model._online_encoder()
    enc_k = model.momentum_encoder.module

    def encode(enc, x):
        c3, c4, c5 = enc['backbone'](x)
        g = F.normalize(enc['neck'](c5), dim=1)
        p3, p4 = enc['fpn']((c3, c4, c5))
        return g, dict(p4=p4, p3=p3)

    q, maps_q = encode(enc_q, inputs[0])
    kernel, stride = REFERENCE_NEG_POOL[size]
    with torch.no_grad():
        k, maps_k = encode(enc_k, inputs[1])
        negatives = {lvl: ref.reference_negatives(m, kernel, stride) for lvl, m in maps_k.items()}
    regions = {}
    for lvl, lattice in windows.items():
        per_image = [ref.reference_regions(size, loc_q, loc_k, **lattice) for loc_q, loc_k in pairs]
        regions[lvl] = [torch.stack(part) for part in zip(*per_image)]  # query, key, labels
    scale = dict(p4=1 / 16., p3=1 / 8.)

    def pooled(maps, map_lvl, boxes):
        return F.normalize(ref.precise_roi_pool_all(maps[map_lvl], boxes, scale[map_lvl]), dim=1)

    out = {}
    target = torch.zeros(q.shape[0], dtype=torch.long)
    out['loss_global'], out['acc_global'] = ref.reference_loss_and_accuracy(
        ref.reference_logits(q, k, queue, T), target)
    for name, q_lvl, k_lvl in (('p4', 'p4', 'p4'), ('p3', 'p3', 'p3'),
                               ('p4_p3', 'p4', 'p3'), ('p3_p4', 'p3', 'p4')):
        query_boxes, key_boxes, labels = regions[q_lvl]
        query = pooled(maps_q, q_lvl, query_boxes)
        with torch.no_grad():
            positive = pooled(maps_k, k_lvl, key_boxes)
        out[f'loss_{name}'], out[f'acc_{name}'] = ref.reference_loss_and_accuracy(
            ref.reference_logits(query, positive, negatives[k_lvl], T), labels.view(-1))
    return out


@pytest.mark.parametrize('size,windows', [
    pytest.param(64, CROSSCL_WINDOWS, id='crosscl-64px'),
    pytest.param(96, RESIM_P3_WINDOWS, id='resim-p3-lattice-96px'),
])
def test_losses_match_the_reference_computation(size, windows):
    model = build()
    model.train()
    pairs = random_crop_pairs(3, seed=size)
    inputs, samples = make_inputs(3, size), samples_from_crops(pairs, size, windows)
    queue = model.queue.keys.clone()
    # The momentum encoder starts equal to the online one (first update copies).
    model.momentum_encoder.update_parameters(model._online_encoder())
    reference_model = copy.deepcopy(model)
    model.momentum_encoder.steps.zero_()
    ours = model.loss(inputs, samples)
    expected = reference_losses(reference_model, inputs, pairs, windows, queue)
    assert set(ours) == set(expected)
    for name, value in expected.items():
        torch.testing.assert_close(ours[name], value, rtol=1e-5, atol=1e-5,
                                   msg=lambda m, name=name: f'{name}: {m}')
        assert torch.isfinite(ours[name])
    # Some windows of these crops are valid and some are not.
    labels = torch.stack([s.regions_p3.valid for s in samples])
    assert labels.any() and not labels.all()


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


def test_queue_keeps_the_last_keys_of_every_batch_size():
    """Batches of 1, of 3 that fill and that wrap, of more than the queue and
    of exactly the queue, against queues written out by hand. Key ``v`` is the
    column ``(v, -v)``; the queue starts as columns 100..104."""
    queue = KeyQueue(5, 2)
    queue.keys.copy_(torch.tensor([[100., 101, 102, 103, 104], [-100, -101, -102, -103, -104]]))

    def push(*values):
        queue.push(torch.tensor([[v, -v] for v in values], dtype=torch.float32))
        assert torch.equal(queue.keys[1], -queue.keys[0])
        return queue.keys[0].tolist(), int(queue.ptr)

    assert push(1) == ([1, 101, 102, 103, 104], 1)
    assert push(2, 3, 4) == ([1, 2, 3, 4, 104], 4)
    assert push(5, 6, 7) == ([6, 7, 3, 4, 5], 2)                      # wraps
    assert push(*range(8, 15)) == ([11, 12, 13, 14, 10], 4)           # 7 keys > 5
    assert push(*range(15, 20)) == ([16, 17, 18, 19, 15], 4)          # exactly 5
    assert push(*range(20, 32)) == ([31, 27, 28, 29, 30], 1)          # 12 keys, wraps twice
    assert torch.equal(queue.negatives(), queue.keys.t())


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
