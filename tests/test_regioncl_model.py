"""RegionCL-M and RegionCL-D: every loss term against a computation written
here from the definitions (Annbless/RegionCL ``RegionCLM.py:165-267``,
``necks.py:225-240``; CoinCheung/DenseCL ``builder.py:139-206``,
``cutmix.py``, ``resnet.py:232-244``, ``main_densecl.py:323-326``), with
the boxes and partners drawn by the official rules from the same seed, and
the queues after the step. Nothing of crosscl_mm on the expected side but
the model's own (mmdet) backbone module and its weights."""
import copy

import pytest
import torch
import torch.nn.functional as F

import crosscl_mm  # noqa: F401
from crosscl_mm.registry import MODELS

SIZE = 96  # small boxes (1-2 cells of 32 px, CELLS) keep the test fast: 3x3 C5 maps
CELLS = (1, 2)  # the recipes' 3-5 cells need >= 161 (official) or 192 px (grid)
M = 0.99
T = 0.2
BATCH = 4
QUEUE = 24


def backbone_cfg():
    return dict(type='mmdet.ResNet', depth=18, out_indices=(3,), norm_cfg=dict(type='BN'),
                zero_init_residual=False)


def tiny_cfg(algo, sampler, pairing, **overrides):
    """ResNet-18, 16-d embeddings, a queue of 24, boxes of CELLS."""
    cfg = dict(type=algo, queue_len=QUEUE, feat_dim=16, momentum=M, backbone=backbone_cfg(),
               neck=dict(type='GlobalProjectionNeck', in_channels=512, hid_channels=32,
                         out_channels=16),
               loss=dict(type='InfoNCELoss', temperature=T),
               swap=dict(sampler=sampler, pairing=pairing, min_cells=CELLS[0],
                         max_cells=CELLS[1]))
    cfg.update(overrides)
    return cfg


def regioncl_m_cfg(**overrides):
    return tiny_cfg('RegionCLM', 'official', 'reversal', **overrides)


def regioncl_d_cfg(**overrides):
    dense_neck = dict(type='DenseProjectionNeck', in_channels=512, hid_channels=32,
                      out_channels=16)
    return tiny_cfg('RegionCLD', 'grid', 'random', **dict(dict(dense_neck=dense_neck),
                                                          **overrides))


def build(cfg):
    torch.manual_seed(0)
    return MODELS.build(cfg).train()


def make_inputs(n, seed, size=SIZE):
    """Two views of ``n`` noise images, image ``i`` scaled and shifted by
    ``0.2 * 3^i``: at initialisation the features of plain noise images are
    nearly equal, and which image a negative comes from would hardly show."""
    g = torch.Generator().manual_seed(seed)
    scale = 0.2 * 3.0 ** torch.arange(n, dtype=torch.float32).view(-1, 1, 1, 1)
    return [torch.randn(n, 3, size, size, generator=g) * scale + scale,
            torch.randn(n, 3, size, size, generator=g) * scale + scale]


# ---- the expected side, from the definitions ----------------------------------

def official_box(seed, side=SIZE, cells=CELLS):
    """RegionCLM.py:178-187 after torch.manual_seed(seed): w, h = 32 *
    randint(lower, upper) (the recipe's 3, 6; here CELLS[0], CELLS[1] + 1);
    start = min(round_half_even(randint(0, side) / 32) * 32, side - 1 - size),
    x then y. Returns (x0, y0, w, h) in pixels."""
    torch.manual_seed(seed)
    w = 32 * torch.randint(cells[0], cells[1] + 1, (1,)).item()
    h = 32 * torch.randint(cells[0], cells[1] + 1, (1,)).item()
    starts = []
    for size in (w, h):
        q, r = divmod(torch.randint(0, side, (1,)).item(), 32)
        starts.append(min(32 * (q + (r > 16 or (r == 16 and q % 2 == 1))), side - 1 - size))
    return starts[0], starts[1], w, h


def grid_box_and_perm(n, side=SIZE, cells=CELLS):
    """cutmix.py:21-32 from the current RNG state: h, w cells, start row and
    column in [0, cells - size - 1], then randperm(n)."""
    h, w = torch.randint(cells[0], cells[1] + 1, (2,)).tolist()
    row = torch.randint(0, side // 32 - h, (1,))[0].item()
    col = torch.randint(0, side // 32 - w, (1,))[0].item()
    return (32 * col, 32 * row, 32 * w, 32 * h), torch.randperm(n)


def mlp(params, x):
    h = F.relu(x @ params['neck.mlp.0.weight'].t() + params['neck.mlp.0.bias'])
    return h @ params['neck.mlp.2.weight'].t() + params['neck.mlp.2.bias']


def dense_head(params, fmap):
    """1x1 conv, ReLU, 1x1 conv on (N, C, H, W)."""
    w0, b0 = params['dense_neck.convs.0.weight'], params['dense_neck.convs.0.bias']
    w2, b2 = params['dense_neck.convs.2.weight'], params['dense_neck.convs.2.bias']
    h = F.relu(torch.einsum('nchw,oc->nohw', fmap, w0[:, :, 0, 0]) + b0[:, None, None])
    return torch.einsum('nchw,oc->nohw', h, w2[:, :, 0, 0]) + b2[:, None, None]


def ce(q, pos, queue, intra=None):
    """-log exp(q.pos/T) / (exp(q.pos/T) + [exp(q.intra/T)] + sum_j exp(q.Q_j/T)),
    mean over rows; ``queue`` is (dim, K)."""
    p = torch.exp((q * pos).sum(1) / T)
    others = torch.exp(q @ queue / T).sum(1)
    if intra is not None:
        others = others + torch.exp((q * intra).sum(1) / T)
    return -torch.log(p / (p + others)).mean()


def composites_of(img, box, partner):
    x0, y0, w, h = box
    out = img.clone()
    for i in range(img.shape[0]):
        out[i, :, y0:y0 + h, x0:x0 + w] = img[int(partner[i]), :, y0:y0 + h, x0:x0 + w]
    return out


def paste_and_canvas(c5, box):
    """Mean of C5 over the cells floor(start / 32) .. + size / 32, and over the rest."""
    x0, y0, w, h = box
    cx, cy, cw, ch = x0 // 32, y0 // 32, w // 32, h // 32
    cells = [(y, x) for y in range(c5.shape[2]) for x in range(c5.shape[3])]
    inside = [(y, x) for y, x in cells if cx <= x < cx + cw and cy <= y < cy + ch]
    outside = [c for c in cells if c not in inside]
    paste = torch.stack([c5[:, :, y, x] for y, x in inside]).mean(0)
    canvas = torch.stack([c5[:, :, y, x] for y, x in outside]).mean(0)
    return paste, canvas


def region_term(backbone, params, img_q, box, partner, k, queue, indexing):
    """canvas i: [c_i.k_i | c_i.sg(p_i) | c_i.Q]; image j's paste, on composite a
    (partner[a] = j): [p_a.k_j | p_a.sg(c) | p_a.Q] with c = c_a (the canvas it
    lies on, 'corrected') or c_{partner[j]} ('as_released')."""
    c5 = backbone(composites_of(img_q, box, partner))[-1]
    paste, canvas = paste_and_canvas(c5, box)
    p = F.normalize(mlp(params, paste), dim=1)
    c = F.normalize(mlp(params, canvas), dim=1)
    n = img_q.shape[0]
    composite_of = {int(partner[a]): a for a in range(n)}
    rows_q, rows_pos, rows_intra = [], [], []
    for i in range(n):
        rows_q.append(c[i]), rows_pos.append(k[i]), rows_intra.append(p[i].detach())
    for j in range(n):
        a = composite_of[j]
        under = c[a] if indexing == 'corrected' else c[int(partner[j])]
        rows_q.append(p[a]), rows_pos.append(k[j]), rows_intra.append(under.detach())
    return ce(torch.stack(rows_q), torch.stack(rows_pos), queue, torch.stack(rows_intra))


def split_params(snapshot):
    state = snapshot.state_dict()
    online = {k: v for k, v in state.items()
              if k.startswith(('backbone.', 'neck.', 'dense_neck.'))}
    momentum = {k[len('momentum_encoder.module.'):]: v for k, v in state.items()
                if k.startswith('momentum_encoder.module.')}
    key_params = {k: M * momentum[k] + (1 - M) * v if v.is_floating_point() else v
                  for k, v in online.items()}
    key_backbone = copy.deepcopy(snapshot.backbone)
    key_backbone.load_state_dict({k[len('backbone.'):]: v for k, v in key_params.items()
                                  if k.startswith('backbone.')})
    return state, online, key_params, key_backbone


def expected_regioncl_m(snapshot, inputs, seed, indexing='as_released'):
    state, online, key_params, key_backbone = split_params(snapshot)
    img_q, img_k = inputs
    box = official_box(seed)
    partner = torch.arange(img_q.shape[0] - 1, -1, -1)  # B-1-i
    q = F.normalize(mlp(online, snapshot.backbone(img_q)[-1].mean((2, 3))), dim=1)
    with torch.no_grad():
        k = F.normalize(mlp(key_params, key_backbone(img_k)[-1].mean((2, 3))), dim=1)
    queue = state['instance_queue.keys']
    out = dict(loss_instance=ce(q, k, queue),
               loss_region=region_term(snapshot.backbone, online, img_q, box, partner, k, queue,
                                       indexing))
    return out, k, box


def expected_regioncl_d(snapshot, inputs, seed, indexing='as_released'):
    state, online, key_params, key_backbone = split_params(snapshot)
    img_q, img_k = inputs
    f_q = snapshot.backbone(img_q)[-1]
    q = F.normalize(mlp(online, f_q.mean((2, 3))), dim=1)
    dq = F.normalize(dense_head(online, f_q).flatten(2), dim=1)          # (N, D, S)
    with torch.no_grad():
        f_k = key_backbone(img_k)[-1]
        k = F.normalize(mlp(key_params, f_k.mean((2, 3))), dim=1)
        dense_k = dense_head(key_params, f_k).flatten(2)
        dk = F.normalize(dense_k, dim=1)
        fq, fk = F.normalize(f_q.flatten(2), dim=1), F.normalize(f_k.flatten(2), dim=1)
        n, _, cells = fq.shape
        # the key cell whose backbone feature is most similar to each query cell
        match = torch.stack([torch.stack([(fq[i, :, s:s + 1] * fk[i]).sum(0).argmax()
                                          for s in range(cells)]) for i in range(n)])
        dpos = torch.stack([dk[i][:, match[i]] for i in range(n)])
    torch.manual_seed(seed)  # the swap is drawn after the keys, from the same state
    box, perm = grid_box_and_perm(img_q.shape[0])
    queue, dense_queue = state['instance_queue.keys'], state['dense_queue.keys']
    dense = ce(dq.transpose(1, 2).reshape(-1, dq.shape[1]),
               dpos.transpose(1, 2).reshape(-1, dq.shape[1]), dense_queue)
    out = dict(loss_global=0.5 * ce(q, k, queue), loss_dense=0.5 * dense,
               loss_region=1.0 * region_term(snapshot.backbone, online, img_q, box, perm, k,
                                             queue, indexing))
    return out, k, F.normalize(dense_k.mean(2), dim=1), box, perm


def first_step(model):
    torch.manual_seed(100)
    model.loss(make_inputs(BATCH, seed=1))  # the key encoder copies, the queues get keys
    return copy.deepcopy(model)


def off_grid_seed():
    """A seed whose official box is clamped off the 32 px grid, so the
    feature cells (floor) are not the pasted pixels / 32 rounded."""
    return next(s for s in range(200) if official_box(s)[0] % 32 and official_box(s)[1] % 32)


def test_regioncl_m_instance_and_region_terms_and_the_queue():
    model = build(regioncl_m_cfg())
    snapshot = first_step(model)
    seed = off_grid_seed()
    inputs = make_inputs(BATCH, seed=2)
    torch.manual_seed(seed)
    losses = model.loss(inputs)
    expected, k, box = expected_regioncl_m(snapshot, inputs, seed)
    assert box[0] % 32 and box[1] % 32
    assert sorted(losses) == ['acc_instance', 'acc_region', 'loss_instance', 'loss_region']
    for name, value in expected.items():
        torch.testing.assert_close(losses[name], value, rtol=1e-5, atol=1e-6, msg=name)
    queue, before = model.instance_queue, snapshot.instance_queue
    assert int(queue.ptr) == 2 * BATCH
    torch.testing.assert_close(queue.keys[:, BATCH:2 * BATCH].t(), k, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(queue.keys[:, :BATCH], before.keys[:, :BATCH])
    # the reversal is its own inverse: the corrected indexing gives the same loss
    corrected = build(regioncl_m_cfg(paste_intra_negative='corrected'))
    corrected.load_state_dict(snapshot.state_dict())
    torch.manual_seed(seed)
    torch.testing.assert_close(corrected.loss(inputs)['loss_region'], losses['loss_region'])


def test_regioncl_d_global_dense_region_terms_weights_and_both_queues():
    model = build(regioncl_d_cfg())
    snapshot = first_step(model)
    seed = next(s for s in range(100)  # a permutation that is not its own inverse
                if not torch.equal(perm_of(s), torch.argsort(perm_of(s))))
    inputs = make_inputs(BATCH, seed=3)
    torch.manual_seed(seed)
    losses = model.loss(inputs)
    expected, k, dense_key, _, perm = expected_regioncl_d(snapshot, inputs, seed)
    assert not torch.equal(perm, torch.argsort(perm))
    assert sorted(k for k in losses if k.startswith('loss_')) == sorted(expected)
    for name, value in expected.items():
        torch.testing.assert_close(losses[name], value, rtol=1e-5, atol=1e-6, msg=name)
    for queue, keys in ((model.instance_queue, k), (model.dense_queue, dense_key)):
        assert int(queue.ptr) == 2 * BATCH
        torch.testing.assert_close(queue.keys[:, BATCH:2 * BATCH].t(), keys, rtol=1e-5, atol=1e-6)

    # The corrected indexing is the named option, and on this permutation it differs.
    corrected = build(regioncl_d_cfg(paste_intra_negative='corrected'))
    corrected.load_state_dict(snapshot.state_dict())
    torch.manual_seed(seed)
    fixed = corrected.loss(inputs)['loss_region']
    expected_fixed = expected_regioncl_d(snapshot, inputs, seed, 'corrected')[0]['loss_region']
    torch.testing.assert_close(fixed, expected_fixed, rtol=1e-5, atol=1e-6)
    assert abs(fixed.item() - losses['loss_region'].item()) > 1e-3

    # Region weight 0: DenseCL as that repository runs it; nothing of the swap is drawn.
    densecl = build(regioncl_d_cfg(loss_weights=dict(loss_global=0.5, loss_dense=0.5,
                                                     loss_region=0.0)))
    densecl.load_state_dict(snapshot.state_dict())
    torch.manual_seed(seed)
    only = densecl.loss(inputs)
    assert 'loss_region' not in only
    torch.testing.assert_close(only['loss_dense'], expected['loss_dense'], rtol=1e-5, atol=1e-6)


def perm_of(seed, n=BATCH):
    torch.manual_seed(seed)
    return grid_box_and_perm(n)[1]


def test_clear_errors_at_the_first_step():
    model = build(regioncl_m_cfg())
    with pytest.raises(ValueError, match='even per-GPU batch'):
        model.loss(make_inputs(3, seed=0))
    with pytest.raises(ValueError, match='at least 65 px'):
        model.loss(make_inputs(4, seed=0, size=64))
    with pytest.raises(ValueError, match='queue_len 24 is not a multiple of the global batch 16'):
        build(regioncl_m_cfg()).loss(make_inputs(16, seed=0))
    with pytest.raises(ValueError, match='more than 2 cells'):
        build(regioncl_d_cfg()).loss(make_inputs(4, seed=0, size=64))
    with pytest.raises(ValueError, match="swap.sampler must be one of"):
        MODELS.build(regioncl_m_cfg(swap=dict(sampler='uniform', pairing='reversal')))
    with pytest.raises(ValueError, match='paste_intra_negative must be one of'):
        MODELS.build(regioncl_d_cfg(paste_intra_negative='fixed'))
    # the queue was left untouched by the refused steps
    assert int(model.instance_queue.ptr) == 0


def test_regioncl_d_under_bfloat16_autocast_matches_float32():
    """The mixed-precision path of RegionCL-D's configs (MixedPrecisionOptimWrapper,
    bfloat16 autocast on the CPU) against float32 from the same state and draws:
    the losses come out in float32, finite, and within 0.05 of float32's."""
    from mmengine.optim import OptimWrapper
    from crosscl_mm.engine.optimizers import MixedPrecisionOptimWrapper
    model = build(regioncl_d_cfg(swap=dict(sampler='grid', pairing='random', min_cells=1,
                                           max_cells=1)))
    inputs = make_inputs(2, seed=5, size=64)  # bfloat16 convolutions are slow on a CPU
    runs = {}
    for label, wrapper_type in (('fp32', OptimWrapper), ('amp', MixedPrecisionOptimWrapper)):
        copy_ = copy.deepcopy(model)
        wrapper = wrapper_type(optimizer=torch.optim.SGD(copy_.parameters(), lr=0.03))
        torch.manual_seed(9)
        with wrapper.optim_context(copy_):
            runs[label] = copy_.loss(inputs)
        if label == 'amp':
            assert wrapper.cast_dtype is torch.bfloat16
    for term in ('loss_global', 'loss_dense', 'loss_region'):
        value, ref = runs['amp'][term], runs['fp32'][term]
        assert value.dtype == torch.float32 and torch.isfinite(value)
        assert abs(value.item() - ref.item()) < 0.05, (term, value, ref)
