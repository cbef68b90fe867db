"""SoCo's model against a re-derivation of the official forward
(github hologerry/SoCo contrast/models/SoCo_FPN.py, SoCo_FPN_Star.py, fpn.py,
resnet.py, fast_rcnn_conv_fc_head.py, mlps.py, box_util.py,
data/bboxs_utils.py), written below from those definitions with torch and
torchvision only; the momentum schedule; the loss; LARS and the schedule."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.ops as tvops
from mmengine.structures import BaseDataElement, InstanceData
from PIL import Image

import crosscl_mm  # noqa: F401
from crosscl_mm.datasets.geometry import (boxes_as_crop_fractions, flip_crop_fractions,
                                          fpn_levels_by_size)
from crosscl_mm.registry import MODELS

from conftest import skimage_photo
from test_soco_pipeline import official_levels, official_tensor

# ---------------------------------------------------------------------------
# The official forward, from its definitions. W maps official names
# (encoder.*, neck.*, head.*, projector.*, predictor.*, *_k) to tensors.


def off_bn(x, W, p):  # every BN of the official model runs in train mode
    return F.batch_norm(x, W[p + 'running_mean'].clone(), W[p + 'running_var'].clone(),
                        W[p + 'weight'], W[p + 'bias'], True, 0.1, 1e-5)


def off_resnet(x, W, p):  # contrast/resnet.py, head_type 'multi_layer': C2-C5
    x = F.max_pool2d(F.relu(off_bn(F.conv2d(x, W[p + 'conv1.weight'], stride=2, padding=3),
                                   W, p + 'bn1.')), 3, 2, 1)
    outs = []
    for layer in range(1, 5):
        b = 0
        while f'{p}layer{layer}.{b}.conv1.weight' in W:
            q = f'{p}layer{layer}.{b}.'
            stride = 2 if layer > 1 and b == 0 else 1
            bottleneck = q + 'conv3.weight' in W
            if bottleneck:  # stride on the 3x3 conv (resnet.py:73)
                y = F.relu(off_bn(F.conv2d(x, W[q + 'conv1.weight']), W, q + 'bn1.'))
                y = F.relu(off_bn(F.conv2d(y, W[q + 'conv2.weight'], stride=stride, padding=1),
                                  W, q + 'bn2.'))
                y = off_bn(F.conv2d(y, W[q + 'conv3.weight']), W, q + 'bn3.')
            else:
                y = F.relu(off_bn(F.conv2d(x, W[q + 'conv1.weight'], stride=stride, padding=1),
                                  W, q + 'bn1.'))
                y = off_bn(F.conv2d(y, W[q + 'conv2.weight'], padding=1), W, q + 'bn2.')
            if q + 'downsample.0.weight' in W:
                x = off_bn(F.conv2d(x, W[q + 'downsample.0.weight'], stride=stride), W,
                           q + 'downsample.1.')
            x = F.relu(y + x)
            b += 1
        outs.append(x)
    return outs


def off_fpn(feats, W, p):  # contrast/models/fpn.py: ConvModule(conv, BN), no activation
    lat = [off_bn(F.conv2d(f, W[f'{p}lateral_convs.{i}.conv.weight']), W,
                  f'{p}lateral_convs.{i}.bn.') for i, f in enumerate(feats)]
    for i in range(len(lat) - 1, 0, -1):
        lat[i - 1] = lat[i - 1] + F.interpolate(lat[i], size=lat[i - 1].shape[2:], mode='nearest')
    return [off_bn(F.conv2d(x, W[f'{p}fpn_convs.{i}.conv.weight'], padding=1), W,
                   f'{p}fpn_convs.{i}.bn.') for i, x in enumerate(lat)]


def off_head(x, W, p):  # FastRCNNConvFCHead
    for i in range(1, 5):
        x = F.relu(off_bn(F.conv2d(x, W[f'{p}conv{i}.weight'], padding=1), W, f'{p}bn{i}.'))
    return F.relu(F.linear(x.flatten(1), W[p + 'fc1.weight'], W[p + 'fc1.bias']))


def off_mlp(x, W, p):  # mlps.MLP: BN1d on (N, C, 1)
    x = F.linear(x, W[p + 'linear1.weight'], W[p + 'linear1.bias'])
    x = off_bn(x.unsqueeze(-1), W, p + 'bn1.').squeeze(-1)
    return F.linear(F.relu(x), W[p + 'linear2.weight'], W[p + 'linear2.bias'])


def off_roi_align(feature_map, bboxs, output_size=(7, 7)):  # roi_align_feature_map + box_util
    feature_map = feature_map.type(dtype=bboxs.dtype)
    N, C, H, W = feature_map.shape
    N, L, _ = bboxs.shape
    index = torch.arange(N).reshape(N, 1).repeat(1, L).reshape(N, L, 1)
    coord = bboxs[:, :, :4].clone()
    coord[:, :, 0] = coord[:, :, 0] * W
    coord[:, :, 2] = coord[:, :, 2] * W
    coord[:, :, 1] = coord[:, :, 1] * H
    coord[:, :, 3] = coord[:, :, 3] * H
    rois = torch.cat([index, coord], dim=2).reshape(N * L, 5)
    return tvops.roi_align(input=feature_map, boxes=rois, output_size=output_size, aligned=True)


def off_embed(fpn_feats, bboxs, W, suffix, predict):  # one box set, level by level
    N, L, _ = bboxs.shape
    out = []
    for feat in fpn_feats:
        z = off_mlp(off_head(off_roi_align(feat, bboxs), W, f'head{suffix}.'), W,
                    f'projector{suffix}.')
        if predict:
            z = off_mlp(z, W, 'predictor.')
        out.append(F.normalize(z, dim=1).reshape((N, L, -1)))
    return torch.cat(out, dim=1)


def off_loss(q, k, corr):  # regression_loss_bboxs_aware
    sim = torch.bmm(q, torch.transpose(k, 1, 2))
    return -2 * ((sim * corr).sum(-1).sum(-1) / (corr.sum(-1).sum(-1) + 1e-6)).mean()


def off_assign(boxes_px, crop_hw, size, limits, fill):  # assign_bboxs_to_feature_map
    assigned = np.ones((4, len(boxes_px))) * fill
    levels = official_levels(boxes_px, *crop_hw, size, limits)
    for i, (level, box_id) in enumerate(zip(levels, boxes_px[:, 4])):
        if level >= 0:
            assigned[level, i] = box_id
    return assigned.reshape(-1)


def off_corr(a, b):  # get_aware_correspondence_matrix
    return torch.Tensor((a.reshape(-1, 1) == b.reshape(1, -1)).astype(float))


def official_state(ours):
    """Our state dict under the official names (SoCo_FPN.py:49-63)."""
    W = {}
    for key, value in ours.items():
        for mine, theirs in (('momentum_encoder.module.backbone.', 'encoder_k.'),
                             ('momentum_encoder.module.neck.', 'neck_k.'),
                             ('momentum_encoder.module.head.', 'head_k.'),
                             ('momentum_encoder.module.projector.', 'projector_k.'),
                             ('backbone.', 'encoder.'), ('neck.', 'neck.'), ('head.', 'head.'),
                             ('projector.', 'projector.'), ('predictor.', 'predictor.')):
            if key.startswith(mine):
                rest = key[len(mine):]
                if theirs.startswith('head'):
                    rest = rest.replace('fc.', 'fc1.')
                    for i in range(4):
                        rest = rest.replace(f'convs.{i}.conv.', f'conv{i + 1}.')
                        rest = rest.replace(f'convs.{i}.bn.', f'bn{i + 1}.')
                W[theirs + rest] = value.clone()
                break
    return W


# ---------------------------------------------------------------------------

def soco_model(depth, base_channels=16):
    expansion = 1 if depth in (18, 34) else 4
    in_channels = [base_channels * expansion * 2 ** i for i in range(4)]
    return MODELS.build(dict(
        type='SoCo', base_momentum=0.99,
        backbone=dict(type='mmdet.ResNet', depth=depth, base_channels=base_channels,
                      out_indices=(0, 1, 2, 3), norm_cfg=dict(type='BN'), norm_eval=False),
        neck=dict(type='mmdet.FPN', in_channels=in_channels, out_channels=16, num_outs=4,
                  norm_cfg=dict(type='BN'), init_cfg=None),
        head=dict(type='ConvFCBoxHead', in_channels=16, conv_channels=16, fc_channels=32),
        projector=dict(type='ProjectionMLP', in_channels=32, hid_channels=64, out_channels=24),
        predictor=dict(type='ProjectionMLP', in_channels=24, hid_channels=64, out_channels=24)))


def soco_model_at_step(depth, seed, k, K):
    """A SoCo model with online != target weights, at momentum update k of K,
    in training mode; and the generator that perturbed it."""
    torch.manual_seed(0)
    model = soco_model(depth)
    rng = torch.Generator().manual_seed(seed)
    perturb(model, rng)
    model.momentum_encoder.update_parameters(model._online_encoder())  # the copy
    perturb(model, rng)                                                # online != target now
    set_momentum_updates(model.momentum_encoder, k)
    model.momentum_encoder.max_iters = K
    return model.train(), rng


def perturb(module, rng):
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=rng) * 0.2)


SIZES = (0.12, 0.4, 0.75, 1.0)


def make_views_and_boxes(star, sizes, limits, rng):
    """Views of a real photo (given crops and flips) and hand-drawn box sets
    in crop pixels with ids: matching, duplicated (padding), unmatched."""
    photo = Image.open(skimage_photo('astronaut.png')).convert('RGB').resize((160, 120))
    W, H = photo.size
    crops = [(0, 0, W, H), (20, 10, 140, 110), (50, 30, 130, 100)]
    if star:
        crops.append(crops[1])
    flips = [True, False, True, True][:len(crops)]
    n = 2
    mean = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1)
    views = []
    for v, (crop, size, flip) in enumerate(zip(crops, sizes, flips)):
        img = photo.crop(crop).resize((size, size), Image.BILINEAR)
        if star and v == 3:
            img = photo.crop(crops[1]).resize((sizes[1],) * 2, Image.BILINEAR).resize(
                (size, size), Image.BILINEAR)
        arr = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float()
        if flip:
            arr = arr.flip(-1)
        arr = (arr - mean) / std
        views.append(torch.stack([arr, arr.flip(-1) * 0.9 + 0.05]))  # two images
    sets = {}  # name -> (n, 4, 5) boxes in crop pixels with ids
    pairs = range(2, len(crops) + 1)
    for k in pairs[:2]:
        per_image1, per_imagek = [], []
        for i in range(n):
            ids = [1, 2, 3] if i == 0 else [4, 5, 6]
            rows1, rowsk = [], []
            for j, box_id in enumerate(ids):
                # Sizes (fractions of the crop) that land on P2-P5 of a 64-px view, so
                # matches exist on every level.
                for rows, crop, size in ((rows1, crops[0], SIZES[(i + j) % 4]),
                                         (rowsk, crops[k - 1], SIZES[(i + j + 1) % 4])):
                    cw, ch = crop[2] - crop[0], crop[3] - crop[1]
                    bw = size * rng.uniform(0.97, 1.0) * cw
                    bh = size * rng.uniform(0.97, 1.0) * ch
                    x1, y1 = rng.uniform(0, cw - bw), rng.uniform(0, ch - bh)
                    rows.append([x1, y1, x1 + bw - 1, y1 + bh - 1, box_id])
            rows1.append(rows1[0])                   # a padded duplicate
            rowsk.append([0, 0, 9, 9, 9 if i == 0 else ids[1]])  # unmatched / extra twin
            per_image1.append(rows1)
            per_imagek.append(rowsk)
        sets[f'1_{k}'] = np.array(per_image1)
        sets[f'{k}'] = np.array(per_imagek)
    if star:  # SoCo*: view 4 reuses view 2's boxes, and (1, 4) reuses (1, 2)'s
        sets['1_4'], sets['4'] = sets['1_2'].copy(), sets['2'].copy()
    return views, crops, flips, sets


def pack_samples(sets, crops, flips, sizes, limits):
    """Ours: the boxes through our geometry, packed as the pipeline packs them."""
    samples = []
    for i in range(2):
        sample = BaseDataElement()
        for name, boxes in sets.items():
            view = 0 if name.startswith('1_') else int(name) - 1
            px = boxes[i, :, :4]
            fractions = boxes_as_crop_fractions(px, crops[view]).astype(np.float32)
            if flips[view]:
                fractions = flip_crop_fractions(fractions)
            sample.set_field(InstanceData(
                boxes=torch.from_numpy(fractions), ids=torch.from_numpy(boxes[i, :, 4]).long(),
                levels=torch.from_numpy(fpn_levels_by_size(px, crops[view], sizes[view],
                                                           limits))), f'regions_{name}')
        samples.append(sample)
    return samples


def crop_hw(crop):
    return crop[3] - crop[1], crop[2] - crop[0]



@pytest.mark.parametrize('star,depth', [(False, 50), (True, 18)], ids=['SoCo-R50', 'SoCo*-R18'])
def test_loss_matches_the_official_forward(star, depth, one_thread):
    # Narrow networks (base width 16) at 64-px views: the official computations
    # below read every width from the weights.
    sizes = (64, 64, 48, 32) if star else (64, 64, 32)
    limits = (14, 28, 55, 64)
    k, K = 7, 20
    model, _ = soco_model_at_step(depth, 1, k, K)

    views, crops, flips, sets = make_views_and_boxes(star, sizes, limits,
                                                     np.random.RandomState(2))
    samples = pack_samples(sets, crops, flips, sizes, limits)
    W = official_state(model.state_dict())
    with torch.no_grad():
        ours = model.loss([v.clone() for v in views], samples)

    # Official, on the same weights, views and boxes.
    fills = {'1': -1, '2': -2, '3': -3, '4': -4}
    tensors, assigned = {}, {}
    for name, boxes in sets.items():
        view = 0 if name.startswith('1_') else int(name) - 1
        tensors[name] = torch.stack([torch.from_numpy(official_tensor(b, *crop_hw(crops[view]),
                                                                      flips[view]))
                                     for b in boxes])
        assigned[name] = [off_assign(b, crop_hw(crops[view]), sizes[view], limits,
                                     fills[name[0] if name.startswith('1_') else name])
                          for b in boxes]
    with torch.no_grad():
        feats = [off_fpn(off_resnet(v, W, 'encoder.'), W, 'neck.') for v in views]
        preds = {name: off_embed(feats[0 if name.startswith('1_') else int(name) - 1],
                                 tensors[name], W, '', True) for name in sets}
        m = 1. - (1. - 0.99) * (np.cos(np.pi * k / K) + 1) / 2.
        for key in list(W):
            for q_prefix, k_prefix in (('encoder.', 'encoder_k.'), ('neck.', 'neck_k.'),
                                       ('head.', 'head_k.'), ('projector.', 'projector_k.')):
                if key.startswith(k_prefix) and not key.endswith(
                        ('running_mean', 'running_var', 'num_batches_tracked')):
                    q = W[q_prefix + key[len(k_prefix):]]
                    W[key] = W[key] * m + q * (1. - m)
        feats_k = [off_fpn(off_resnet(v, W, 'encoder_k.'), W, 'neck_k.') for v in views]
        keys = {name: off_embed(feats_k[0 if name.startswith('1_') else int(name) - 1],
                                tensors[name], W, '_k', False) for name in sets}
    official, matches, corrs = {}, [], []
    for k_view in range(2, len(views) + 1):
        corr = torch.stack([off_corr(a, b) for a, b in zip(assigned[f'1_{k_view}'],
                                                           assigned[f'{k_view}'])])
        matches.append(corr.sum((1, 2)))
        corrs.append(corr)
        official[f'loss_v1_v{k_view}'] = off_loss(preds[f'1_{k_view}'], keys[f'{k_view}'], corr)
        official[f'loss_v{k_view}_v1'] = off_loss(preds[f'{k_view}'], keys[f'1_{k_view}'],
                                                  corr.transpose(1, 2))
    diffs = {name: abs(float(ours[name]) - float(value)) for name, value in official.items()}
    print('\nmax abs diff per term:', {n: f'{d:.2e}' for n, d in diffs.items()},
          'loss', float(sum(official.values())))
    assert set(n for n in ours if n.startswith('loss')) == set(official)
    assert max(diffs.values()) < 1e-5, diffs
    # Every image of every pair has matches, and matches involve every FPN level
    # (a level without one would not enter the loss).
    assert all((count > 0).all() for count in matches), matches
    for side in (0, 1):
        levels = {j for corr in corrs for j in range(4)
                  if (corr.narrow(1 + side, j * 4, 4).sum() > 0)}
        assert levels == {0, 1, 2, 3}, (side, levels)
    assert float(ours['momentum']) == pytest.approx(m, rel=0, abs=1e-15)
    # The momentum update itself.
    updated = official_state(model.state_dict())
    for name in ('encoder_k.layer1.0.conv1.weight', 'neck_k.fpn_convs.3.bn.weight',
                 'head_k.fc1.weight', 'projector_k.linear2.bias'):
        torch.testing.assert_close(updated[name], W[name], rtol=0, atol=1e-7)

    # Batching the head over all levels (BN statistics over every level) is
    # another computation: the official per-level batching matters (B3).
    model.head_batching = 'per_box_set'
    set_momentum_updates(model.momentum_encoder, k)
    with torch.no_grad():
        other = model.loss([v.clone() for v in views], samples)
    assert max(abs(float(other[n]) - float(official[n])) for n in official) > 1e-4


def test_matched_cosine_loss_by_hand():
    loss = MODELS.build(dict(type='MatchedCosineLoss'))
    q = F.normalize(torch.tensor([[[1., 0.], [0., 1.]], [[1., 0.], [1., 1.]]]), dim=-1)
    k = F.normalize(torch.tensor([[[1., 0.], [1., 1.]], [[0., 1.], [0., 1.]]]), dim=-1)
    match = torch.tensor([[[1., 0.], [0., 1.]], [[0., 0.], [0., 0.]]])
    # image 0: (cos 1 + cos 45deg) / 2; image 1 has no match: 0, but counts.
    expected = -2 * ((1 + math.sqrt(0.5)) / 2 / (1 + 1e-6 / 2) + 0) / 2
    assert float(loss(q, k, match)) == pytest.approx(expected, rel=1e-6)
    assert float(loss(k, k, torch.eye(2).expand(2, 2, 2))) == pytest.approx(-2, rel=1e-5)


def set_momentum_updates(ema, k):
    """Put the momentum encoder at update ``k`` the way a resume does: through
    its state dict (its host-side count follows the loaded ``steps``)."""
    ema.load_state_dict({**ema.state_dict(), 'steps': torch.tensor([k])})


def official_momentum(k, K, base=0.99):  # SoCo_FPN.py:102
    return 1. - (1. - base) * (np.cos(np.pi * k / K) + 1) / 2.


def test_cosine_momentum_values_and_resume():
    from mmengine.logging import MessageHub

    from crosscl_mm.models.utils import CosineEMA
    online = torch.nn.Linear(3, 2)
    ema = CosineEMA(online, base_momentum=0.99, max_iters=50)
    values = [ema.momentum_at(k) for k in range(51)]
    np.testing.assert_allclose(values, [official_momentum(k, 50) for k in range(51)],
                               rtol=0, atol=1e-15)
    assert values[0] == pytest.approx(0.99) and values[25] == pytest.approx(0.995)
    assert values[50] == 1.0

    # Update 0 copies; update k blends with m(k), term by term as official.
    ema.update_parameters(online)
    assert torch.equal(ema.module.weight, online.weight)
    for step in range(1, 4):
        target = ema.module.weight.detach().clone()
        with torch.no_grad():
            online.weight.add_(1.0)
        ema.update_parameters(online)
        m = official_momentum(step, 50)
        torch.testing.assert_close(ema.module.weight, target * m + online.weight * (1. - m),
                                   rtol=0, atol=0)
    # The counter is state: a fresh copy loaded from it continues at k = 4 (the
    # official counter restarts at 0 after a resume, B2).
    resumed = CosineEMA(torch.nn.Linear(3, 2), base_momentum=0.99, max_iters=50)
    resumed.load_state_dict(ema.state_dict())
    assert int(resumed.steps) == 4
    target = resumed.module.weight.detach().clone()
    resumed.update_parameters(online)
    m = official_momentum(4, 50)
    torch.testing.assert_close(resumed.module.weight, target * m + online.weight * (1. - m),
                               rtol=0, atol=0)
    # Without max_iters, K is the runner's (RuntimeInfoHook's message-hub info).
    hub = MessageHub.get_instance('cosine-ema-test')
    hub.update_info('max_iters', 80)
    assert CosineEMA(online).momentum_at(20) == pytest.approx(official_momentum(20, 80))


# ---------------------------------------------------------------------------
# LARS and the schedule against the official optimiser (contrast/lars.py +
# torch.optim.SGD) and GradualWarmupScheduler + CosineAnnealingLR.

def official_lars_gradients(model, wd, trust=0.001, eps=1e-8):
    """contrast/lars.py: add_weight_decay's groups, then apply_adaptive_lrs."""
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if len(p.shape) == 1 else decay).append(p)
    with torch.no_grad():
        for group, weight_decay, ignore in ((no_decay, 0, True), (decay, wd, False)):
            for p in group:
                if weight_decay > 0:
                    p.grad = p.grad.add(p, alpha=weight_decay)
                if not ignore:
                    pn, gn = p.norm(), p.grad.norm()
                    adaptive = trust * pn / (gn + eps) if pn > 0 and gn > 0 else 1.0
                    p.grad = p.grad.mul(adaptive)


def test_lars_matches_the_official_update():
    from crosscl_mm.engine.optimizers import LARS
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                              torch.nn.Flatten(), torch.nn.Linear(64, 5))
    ref = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                              torch.nn.Flatten(), torch.nn.Linear(64, 5))
    ref.load_state_dict(net.state_dict())
    ours = LARS(net.parameters(), lr=0.7, momentum=0.9, weight_decay=0.05)
    # Official: SGD(momentum 0.9) on the add_weight_decay groups, weight decay zeroed
    # during the step (it went into the gradient before the trust ratio).
    sgd = torch.optim.SGD(ref.parameters(), lr=0.7, momentum=0.9)
    x = torch.randn(6, 3, 6, 6)
    for step in range(4):
        for model, opt in ((net, ours), (ref, sgd)):
            opt.zero_grad()
            model(x * (step + 1)).pow(2).mean().backward()
        official_lars_gradients(ref, 0.05)
        ours.step()
        sgd.step()
        for a, b in zip(net.parameters(), ref.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def official_lr(t, base, iters, epochs, warmup=10, eta_min=1e-6):
    tw = warmup * iters
    if t <= tw:
        return base / 100 * (99 * t / tw + 1)
    cosine = math.cos(math.pi * (t - tw) / ((epochs - warmup) * iters))
    return eta_min + (base - eta_min) * (1 + cosine) / 2


@pytest.mark.parametrize('config,epochs', [('soco_r50fpn_100e_in1k.py', 100),
                                           ('soco_r50fpn_400e_in1k.py', 400)])
def test_schedule_matches_the_official_lr_per_iteration(config, epochs):
    import os.path as osp

    from mmengine.config import Config
    from mmengine.optim.scheduler import CosineAnnealingLR, LinearLR

    from conftest import REPO
    cfg = Config.fromfile(osp.join(REPO, 'configs', config))
    assert cfg.train_cfg.max_epochs == epochs
    iters = 20  # iterations per epoch
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=cfg.optim_wrapper.optimizer.lr)
    schedulers = []
    for spec in cfg.param_scheduler:
        spec = dict(spec)
        kind = {'LinearLR': LinearLR, 'CosineAnnealingLR': CosineAnnealingLR}[spec.pop('type')]
        assert spec.pop('by_epoch') and spec.pop('convert_to_iter_based')
        schedulers.append(kind.build_iter_from_epoch(opt, epoch_length=iters, **spec))
    lrs = []
    for _ in range(epochs * iters):
        lrs.append(opt.param_groups[0]['lr'])
        opt.step()
        for s in schedulers:
            s.step()
    expected = np.array([official_lr(t, 4.0, iters, epochs) for t in range(epochs * iters)])
    lrs = np.array(lrs)
    warmup = 10 * iters
    # From the end of the warmup on, the official cosine, iteration by iteration.
    np.testing.assert_allclose(lrs[warmup:], expected[warmup:], rtol=1e-6, atol=1e-9)
    assert lrs[warmup] == pytest.approx(4.0) and lrs[-1] == pytest.approx(1e-6, abs=1e-5)
    # mmengine's LinearLR reaches the full lr one iteration before the official warmup
    # does (at warmup - 1): at most 0.99 * lr / warmup higher during the warmup.
    assert lrs[0] == pytest.approx(0.04) and (lrs[:warmup] >= expected[:warmup] - 1e-9).all()
    assert (lrs[:warmup] - expected[:warmup]).max() <= 0.99 * 4.0 / warmup + 1e-9


def test_recipes_pin_the_official_settings():
    import os.path as osp

    from mmengine.config import Config

    from conftest import REPO
    cfgs = {name: Config.fromfile(osp.join(REPO, 'configs', f'{name}.py')) for name in
            ('soco_r50fpn_100e_in1k', 'soco_r50fpn_400e_in1k', 'soco-star_r50fpn_400e_in1k')}
    for name, cfg in cfgs.items():
        assert cfg.train_dataloader.batch_size == 128 and cfg.sync_bn == 'torch'
        opt = cfg.optim_wrapper.optimizer
        assert (opt.type, opt.lr, opt.momentum, opt.weight_decay, opt.trust_coefficient,
                opt.eps) == ('LARS', 4.0, 0.9, 1e-5, 0.001, 1e-8)
        assert cfg.auto_scale_lr.base_batch_size == 8 * 128
        m = cfg.model
        assert (m.type, m.base_momentum, m.roi_size, m.head_batching) == \
            ('SoCo', 0.99, 7, 'per_level')
        assert m.backbone.depth == 50 and m.backbone.out_indices == (0, 1, 2, 3)
        # stride on the 3x3 conv (official resnet.py:73), every BN trained, zero-init bn3
        assert m.backbone.style == 'pytorch' and m.backbone.norm_eval is False
        assert m.backbone.zero_init_residual is True
        assert m.neck.norm_cfg.type == 'BN' and m.neck.num_outs == 4 and m.neck.init_cfg is None
        assert (m.head.num_convs, m.head.fc_channels) == (4, 1024)
        assert (m.projector.in_channels, m.projector.hid_channels, m.projector.out_channels,
                m.predictor.in_channels, m.predictor.out_channels) == (1024, 4096, 256, 256, 256)
        pipeline = cfg.train_dataloader.dataset.pipeline
        assert cfg.train_dataloader.dataset.type == 'ProposalsFolder'
        views = next(t for t in pipeline if t.type == 'SoCoViews')
        assert (views.crop_scale, views.select_k, views.padding_k, views.max_tries,
                views.jitter_prob, views.jitter_ratio, tuple(views.level_size_limits)) == \
            ((0.5, 1.0), 4, 4, 5, 0.5, 0.1, (48, 96, 192, 224))
        colors = [t for t in pipeline if t.type == 'ViewColorAugment']
        assert colors[0].views == [0] and colors[0].blur_prob == 1.0
        assert colors[1].blur_prob == 0.1 and colors[1].solarize_prob == 0.2
        assert colors[1].ops == ('jitter', 'gray', 'blur', 'solarize')
        assert (colors[1].saturation, colors[1].hue, colors[1].gray_prob) == (0.2, 0.1, 0.2)
        cutout = [t for t in pipeline if t.type == 'CutoutInBoxes']
        assert len(cutout) == (1 if name == 'soco_r50fpn_100e_in1k' else 0)
    star = next(t for t in cfgs['soco-star_r50fpn_400e_in1k'].train_dataloader.dataset.pipeline
                if t.type == 'SoCoViews')
    assert tuple(star.view_sizes) == (224, 224, 192) and star.downscaled_view_size == 112
    soco = next(t for t in cfgs['soco_r50fpn_400e_in1k'].train_dataloader.dataset.pipeline
                if t.type == 'SoCoViews')
    assert tuple(soco.view_sizes) == (224, 224, 112) and 'downscaled_view_size' not in soco
