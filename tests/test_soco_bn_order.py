"""SoCo's BatchNorm running statistics after one step equal those of the
official forward, whose head calls run box set by box set in the order
1_2, 1_3[, 1_4], 2, 3[, 4] (github hologerry/SoCo contrast/models/SoCo_FPN.py:157-214
online, :221-275 momentum branch; SoCo_FPN_Star.py:157-245, :250-330).

Each call of head, projector and predictor updates their running statistics
(``r = 0.9 r + 0.1 batch statistic``), so the order of the calls decides the
statistics that a checkpoint carries into fine-tuning; the loss does not
depend on it. The replay below is the official forward written from its
definitions (``test_soco_model``'s torch-only functions) with BatchNorm
updating the official running buffers in place."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import test_soco_model as ref
from test_soco_model import (crop_hw, make_views_and_boxes, official_state, official_tensor,
                             pack_samples, soco_model_at_step)

OFFICIAL_ORDER = {False: ('1_2', '1_3', '2', '3'),
                  True: ('1_2', '1_3', '1_4', '2', '3', '4')}
BUFFERS = ('running_mean', 'running_var')


def tracking_bn(x, W, p):  # BatchNorm in train mode, its running buffers updated in place
    return F.batch_norm(x, W[p + 'running_mean'], W[p + 'running_var'], W[p + 'weight'],
                        W[p + 'bias'], True, 0.1, 1e-5)


def official_step(W, views, tensors, order, m):
    """One official forward (SoCo_FPN.forward): online branch, momentum update of
    the parameters, momentum branch; W's BN buffers end as the official ones."""
    def view_of(name):
        return 0 if name.startswith('1_') else int(name) - 1

    def branch(enc, suffix, predict):
        feats = {}
        for name in order:  # the encoder runs on a view when its first box set needs it
            v = view_of(name)
            if v not in feats:
                feats[v] = ref.off_fpn(ref.off_resnet(views[v], W, f'{enc}.'), W, f'neck{suffix}.')
            ref.off_embed(feats[v], tensors[name], W, suffix, predict)

    branch('encoder', '', True)
    # Momentum update of the parameters (SoCo_FPN.py:97-116). Our momentum
    # encoder (mmengine's ExponentialMovingAverage, update_buffers=False) also
    # copies the online buffers into the copy here; the official copy keeps its own.
    for key in list(W):
        for q, k in (('encoder.', 'encoder_k.'), ('neck.', 'neck_k.'), ('head.', 'head_k.'),
                     ('projector.', 'projector_k.')):
            if key.startswith(k):
                online = W[q + key[len(k):]]
                is_buffer = key.endswith(BUFFERS + ('num_batches_tracked',))
                W[key] = online.clone() if is_buffer else W[key] * m + online * (1. - m)
    branch('encoder_k', '_k', False)


@pytest.mark.parametrize('star', [False, True], ids=['SoCo', 'SoCo*'])
def test_bn_running_statistics_after_a_step_follow_the_official_call_order(
        star, monkeypatch, one_thread):
    sizes = (64, 64, 48, 32) if star else (64, 64, 32)
    limits = (14, 28, 55, 64)
    k, K = 5, 20
    model, rng = soco_model_at_step(18, 3, k, K)
    with torch.no_grad():  # running statistics away from (0, 1), as after some training
        for name, buf in model.named_buffers():
            if name.endswith(BUFFERS):
                buf.uniform_(0.5, 1.5, generator=rng)
    views, crops, flips, sets = make_views_and_boxes(star, sizes, limits,
                                                     np.random.RandomState(4))
    samples = pack_samples(sets, crops, flips, sizes, limits)
    W = official_state(model.state_dict())
    tensors = {name: torch.stack([torch.from_numpy(official_tensor(
        b, *crop_hw(crops[0 if name.startswith('1_') else int(name) - 1]),
        flips[0 if name.startswith('1_') else int(name) - 1])) for b in boxes])
        for name, boxes in sets.items()}

    with torch.no_grad():
        model.loss([v.clone() for v in views], samples)
        monkeypatch.setattr(ref, 'off_bn', tracking_bn)
        official_step(W, views, tensors, OFFICIAL_ORDER[star], ref.official_momentum(k, K))

    ours = official_state(model.state_dict())
    checked = [n for n in W if n.endswith(BUFFERS)]
    assert any(n.startswith('head.') for n in checked) and \
        any(n.startswith('predictor.') for n in checked) and \
        any(n.startswith('projector_k.') for n in checked)
    worst = {}
    for name in checked:
        diff = (ours[name] - W[name]).abs().max() / W[name].abs().max()
        group = name.split('.')[0]
        worst[group] = max(worst.get(group, 0.), float(diff))
    print('\nmax relative difference of BN running statistics per module:',
          {g: f'{d:.1e}' for g, d in worst.items()})
    assert max(worst.values()) < 1e-5, worst
