"""The DetCo algorithm: every loss term against a re-derivation from the
paper's Eq. 1-5 on the same features, the queue of each (stage,
global/local), and shuffle BN of both key batches over two processes."""
import copy
import os.path as osp

import pytest
import torch
import torch.nn.functional as F

import crosscl_mm  # noqa: F401
from crosscl_mm.registry import MODELS

from conftest import run_snippet_on_two_ranks

LEVELS = ('res2', 'res3', 'res4', 'res5')
CHANNELS = (64, 128, 256, 512)  # ResNet-18
WEIGHTS = (0.1, 0.4, 0.7, 1.0)
M = 0.99
TEMPERATURES = dict(g2g=0.2, l2l=0.3, l2g=0.5)  # one per term, to see which term uses which


def tiny_cfg(**overrides):
    cfg = dict(type='DetCo', queue_len=24, feat_dim=16, momentum=M,
               backbone=dict(type='mmdet.ResNet', depth=18, out_indices=(0, 1, 2, 3),
                             norm_cfg=dict(type='BN'), zero_init_residual=False),
               level_channels=CHANNELS, level_weights=WEIGHTS,
               global_hid_channels=(32, 32, 32, 32), local_hid_channels=(48, 48, 48, 48),
               loss={term: dict(type='InfoNCELoss', temperature=t)
                     for term, t in TEMPERATURES.items()})
    cfg.update(overrides)
    return cfg


def build(**overrides):
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg(**overrides))
    model.init_weights()
    return model.train()


def make_inputs(n, seed, size=64, patch=32):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, 3, size, size, generator=g), torch.randn(n, 3, size, size, generator=g),
            torch.randn(n, 9, 3, patch, patch, generator=g),
            torch.randn(n, 9, 3, patch, patch, generator=g)]


# ---- the expected side: the paper's definitions, written here --------------

def mlp_head(params, prefix, x):
    """MoCo v2's head from its weights: Linear, ReLU, Linear, then L2-normalise."""
    h = F.relu(x @ params[prefix + 'mlp.0.weight'].t() + params[prefix + 'mlp.0.bias'])
    return F.normalize(h @ params[prefix + 'mlp.2.weight'].t() + params[prefix + 'mlp.2.bias'],
                       dim=1)


def embeddings(backbone, params, img, patches):
    """q^g_i = mlp^i(avgpool(f_i(I))), q^l_i = mlp^i_local([f_i(p_1) | ... | f_i(p_9)])."""
    n, p = patches.shape[:2]
    global_maps = backbone(img)
    patch_maps = backbone(patches.reshape(n * p, *patches.shape[2:]))
    q_g, q_l = {}, {}
    for level, fg, fp in zip(LEVELS, global_maps, patch_maps):
        q_g[level] = mlp_head(params, f'global_necks.{level}.', fg.mean(dim=(2, 3)))
        pooled = fp.mean(dim=(2, 3)).reshape(n, p, -1)
        concatenated = torch.cat([pooled[:, j] for j in range(p)], dim=1)
        q_l[level] = mlp_head(params, f'local_necks.{level}.', concatenated)
    return q_g, q_l


def info_nce(q, k_pos, queue, T):
    """Eq. 2/4/5: -log exp(q.k+/T) / sum_{j=0..K} exp(q.k_j/T), batch mean;
    ``queue`` is (dim, K), the k_j for j >= 1."""
    pos = torch.exp((q * k_pos).sum(dim=1) / T)
    neg = torch.exp(q @ queue / T).sum(dim=1)
    return -torch.log(pos / (pos + neg)).mean()


def paper_losses(snapshot, inputs):
    """Eq. 1: sum_i w_i (L^i_g2g + L^i_l2l + L^i_l2g) on a copy of the model
    taken before the step: queries from the online weights, keys from
    k = m k + (1 - m) q, negatives from the queues as they were."""
    state = snapshot.state_dict()
    online = {k: v for k, v in state.items() if k.startswith(('backbone.', 'global_necks.',
                                                               'local_necks.'))}
    momentum = {k[len('momentum_encoder.module.'):]: v for k, v in state.items()
                if k.startswith('momentum_encoder.module.')}
    key_params = {k: M * momentum[k] + (1 - M) * v if v.is_floating_point() else v
                  for k, v in online.items()}
    key_backbone = copy.deepcopy(snapshot.backbone)
    key_backbone.load_state_dict({k[len('backbone.'):]: v for k, v in key_params.items()
                                  if k.startswith('backbone.')})
    img_q, img_k, patches_q, patches_k = inputs
    q_g, q_l = embeddings(snapshot.backbone, online, img_q, patches_q)
    with torch.no_grad():
        k_g, k_l = embeddings(key_backbone, key_params, img_k, patches_k)
    out = {}
    for level, w in zip(LEVELS, WEIGHTS):
        queue_g = state[f'queues.{level}_global.keys']
        queue_l = state[f'queues.{level}_local.keys']
        t = TEMPERATURES
        out[f'loss_{level}_g2g'] = w * info_nce(q_g[level], k_g[level], queue_g, t['g2g'])  # Eq. 2
        out[f'loss_{level}_l2l'] = w * info_nce(q_l[level], k_l[level], queue_l, t['l2l'])  # Eq. 5
        out[f'loss_{level}_l2g'] = w * info_nce(q_l[level], k_g[level], queue_g, t['l2g'])  # Eq. 4
    return out, k_g, k_l, q_l


def test_every_term_matches_the_papers_equations_and_each_queue_gets_its_keys():
    model = build()
    model.loss(make_inputs(4, seed=1))  # first step: the key encoder copies, queues get keys
    online = dict(model._online_encoder().named_parameters())
    for name, value in model.momentum_encoder.module.named_parameters():
        assert torch.equal(value, online[name]), name  # a copy, not an independent init
    snapshot = copy.deepcopy(model)
    inputs = make_inputs(4, seed=2)
    losses = model.loss(inputs)
    expected, k_g, k_l, q_l = paper_losses(snapshot, inputs)

    assert sorted(k for k in losses if k.startswith('loss_')) == sorted(expected)
    for name, value in expected.items():
        torch.testing.assert_close(losses[name], value, rtol=1e-5, atol=1e-6, msg=name)
    # The accuracy of l2g at Res5: the positive global key above every global negative.
    q, queue = q_l['res5'], snapshot.state_dict()['queues.res5_global.keys']
    top1 = ((q * k_g['res5']).sum(1) > (q @ queue).max(1).values).float().mean() * 100
    torch.testing.assert_close(losses['acc_res5_l2g'], top1)

    # Each (stage, global/local) queue received that stage's keys of that kind, at its pointer.
    for level in LEVELS:
        for kind, keys in (('global', k_g[level]), ('local', k_l[level])):
            queue = model.queues[f'{level}_{kind}']
            assert int(queue.ptr) == 8
            torch.testing.assert_close(queue.keys[:, 4:8].t(), keys, rtol=1e-5, atol=1e-6,
                                       msg=f'{level}_{kind}')
            before = snapshot.queues[f'{level}_{kind}'].keys
            torch.testing.assert_close(queue.keys[:, :4], before[:, :4])


def test_heads_and_queues_per_stage_and_clear_errors():
    model = build(global_hid_channels=None, local_hid_channels=None)
    for level, c in zip(LEVELS, CHANNELS):
        # hidden width C_i by default; the local head takes the nine patches' 9 * C_i
        assert model.global_necks[level].mlp[0].weight.shape == (c, c)
        assert model.local_necks[level].mlp[0].weight.shape == (c, 9 * c)
        assert model.local_necks[level].mlp[2].weight.shape == (16, c)
    assert sorted(model.queues) == sorted(f'{lvl}_{kind}' for lvl in LEVELS
                                          for kind in ('global', 'local'))
    assert all(q.keys.shape == (16, 24) for q in model.queues.values())
    with pytest.raises(ValueError, match='level_weights has 3 entries'):
        MODELS.build(tiny_cfg(level_weights=(1, 1, 1)))
    with pytest.raises(ValueError, match=r'P_q must be \(N, 9, 3, h, w\)'):
        inputs = make_inputs(2, seed=0)
        model.loss([inputs[0], inputs[1], inputs[2][:, :4], inputs[3][:, :4]])
    bn = build(global_neck=dict(type='GlobalProjectionNeck', norm_cfg=dict(type='BN1d')),
               loss=dict(type='InfoNCELoss', temperature=0.2))
    assert isinstance(bn.global_necks['res3'].mlp[1], torch.nn.BatchNorm1d)
    # one loss config serves every term (the paper's single temperature)
    assert [bn.term_losses[t].temperature for t in ('g2g', 'l2l', 'l2g')] == [0.2] * 3
    with pytest.raises(ValueError, match="one per term"):
        MODELS.build(tiny_cfg(loss=dict(g2g=dict(type='InfoNCELoss'))))


SHUFFLE_SNIPPET = """
import sys, torch, torch.distributed as dist
import crosscl_mm
sys.path.insert(0, {tests!r})
from test_detco_model import build, make_inputs
dist.init_process_group('gloo')
rank = dist.get_rank()
model = build()
encoder = model.momentum_encoder.module.eval()  # per-sample BN: shuffling must not matter
img_k, patches_k = make_inputs(3, seed=10 + rank)[1::2]
# Tag every image and patch with (rank, index) to see where the shuffle sent it.
for i in range(3):
    img_k[i, 0, 0, 0] = 100 * rank + i
    patches_k[i, :, 0, 0, 0] = 100 * rank + i
seen = []
encoder['backbone'].register_forward_pre_hook(
    lambda m, args: seen.append(args[0][:, 0, 0, 0].clone()))
with torch.no_grad():
    shuffled = model._momentum_keys(img_k, patches_k)
    direct = model._encode(encoder, img_k, patches_k)
torch.save(dict(shuffled=shuffled, direct=direct, seen=seen), {out!r} + f'.{{rank}}')
"""


def test_shuffle_bn_unshuffles_global_and_local_keys_over_two_processes(tmp_path):
    out = str(tmp_path / 'keys')
    run_snippet_on_two_ranks(SHUFFLE_SNIPPET.format(tests=osp.dirname(osp.abspath(__file__)),
                                                    out=out))
    for rank in range(2):
        res = torch.load(f'{out}.{rank}', weights_only=True)
        # The momentum backbone saw the global batch, then the patch batch (9 per image),
        # both mixed across ranks, with their own permutations.
        global_ids, patch_ids = res['seen'][0].tolist(), res['seen'][1].tolist()[::9]
        assert any(i // 100 != rank for i in global_ids), global_ids
        assert any(i // 100 != rank for i in patch_ids), patch_ids
        shuffled_g, shuffled_l = res['shuffled']
        direct_g, direct_l = res['direct']
        for level in LEVELS:
            torch.testing.assert_close(shuffled_g[level], direct_g[level], msg=f'global {level}')
            torch.testing.assert_close(shuffled_l[level], direct_l[level], msg=f'local {level}')
