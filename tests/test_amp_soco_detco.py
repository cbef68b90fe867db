"""Mixed precision for SoCo, SoCo* and DetCo: their `_amp` configs' models
(made small: ResNet-18, 64-px views) on real photos, one step under the
wrapper's bfloat16 CPU autocast against float32 from the same state. What
the official SoCo run keeps in float32 under apex O1 stays there (RoIAlign's
maps, F.normalize), and so do the losses' sums and softmax."""
import copy
import os.path as osp
import random

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO, skimage_photo
from test_amp import FirstTensorDtypes

OPS = ('convolution', 'roi_align', 'bmm', 'linalg_vector_norm', '_log_softmax')
PHOTOS = ('astronaut.png', 'chelsea.png', 'coffee.png', 'rocket.jpg')


def step_fp32_and_amp(model, forward, terms):
    """``forward(model)`` -> losses, once in float32 and once in the AMP
    wrapper's autocast, each from a copy of the same model; the backward of
    the sum of ``terms``. Returns per run the losses, the dtypes the ops saw
    and the gradients."""
    from mmengine.optim import OptimWrapper
    from crosscl_mm.engine.optimizers import MixedPrecisionOptimWrapper
    runs = {}
    for label, wrapper_type in (('fp32', OptimWrapper), ('amp', MixedPrecisionOptimWrapper)):
        net = copy.deepcopy(model)
        params = [p for p in net.parameters() if p.requires_grad]
        wrapper = wrapper_type(optimizer=torch.optim.SGD(params, lr=0.1))
        with FirstTensorDtypes(OPS) as dtypes:
            with wrapper.optim_context(net):
                losses = forward(net)
            wrapper.backward(sum(losses[t] for t in terms))
        runs[label] = dict(losses=losses, dtypes=dtypes.seen,
                           grads=[p.grad for p in params if p.grad is not None])
    return runs['fp32'], runs['amp']


def gradient_cosine(a, b):
    flat_a = torch.cat([g.flatten() for g in a])
    assert flat_a.dtype == torch.float32 and torch.isfinite(flat_a).all()
    return torch.nn.functional.cosine_similarity(
        flat_a, torch.cat([g.flatten() for g in b]), dim=0).item()


SOCO_TINY = {
    'train_dataloader.dataset.pipeline.2.level_size_limits': [14, 28, 55, 64],
    # ResNet-18 at a quarter width: bfloat16 convolutions are emulated on CPUs without
    # AVX-512 BF16 (about 40x slower than float32 on the 2-core CI machine).
    'model.backbone.depth': 18, 'model.backbone.base_channels': 16,
    'model.neck.in_channels': [16, 32, 64, 128],
    'model.neck.out_channels': 32, 'model.head.in_channels': 32,
    'model.head.conv_channels': 32, 'model.head.fc_channels': 64,
    'model.projector.in_channels': 64, 'model.projector.hid_channels': 128,
    'model.projector.out_channels': 32, 'model.predictor.in_channels': 32,
    'model.predictor.hid_channels': 128, 'model.predictor.out_channels': 32,
}


@pytest.mark.parametrize('name,view_sizes,terms', [
    ('soco_r50fpn_100e_in1k_amp', [64, 64, 32], 4),
    # SoCo* adds a fourth view to the same code path: behind `slow` (40 s on 2 cores).
    pytest.param('soco-star_r50fpn_400e_in1k_amp', [64, 64, 48], 6, marks=pytest.mark.slow),
])
def test_soco_under_bfloat16_autocast_matches_float32(name, view_sizes, terms, photo_dir,
                                                      tmp_path):
    """SoCo's tiny model from its `_amp` config, one batch of 4 real photos
    through the config's own pipeline: convolutions run in bfloat16; RoIAlign
    gets float32 maps, the embeddings are normalised in float32 and the
    matched-cosine loss sums in float32; every loss term agrees with float32
    within 0.04 (its range is [-2, 2]) and the gradients point the same way
    (bfloat16 at initialisation, batch 4; measured: terms within 0.02 (SoCo)
    and 0.018 (SoCo*), gradient cosine 0.92 and 0.94, as CrossCL's 0.95)."""
    from mmengine.config import Config
    from mmengine.dataset import Compose, pseudo_collate
    from mmengine.registry import MODELS, TRANSFORMS, DefaultScope
    from test_soco_pipeline import write_records

    cfg = Config.fromfile(osp.join(REPO, 'configs', f'{name}.py'))
    overrides = dict(SOCO_TINY, **{'train_dataloader.dataset.pipeline.2.view_sizes': view_sizes})
    if 'star' in name:
        overrides['train_dataloader.dataset.pipeline.2.downscaled_view_size'] = 32
    cfg.merge_from_dict(overrides)
    assert cfg.optim_wrapper.type == 'MixedPrecisionOptimWrapper'
    proposals = str(tmp_path / 'proposals')
    paths = sorted(write_records(photo_dir, proposals,
                                 boxes=((4, 4, 40, 30), (20, 10, 60, 60), (0, 0, 90, 80))))[:4]
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    with DefaultScope.overwrite_default_scope('crosscl_mm'):
        pipeline = Compose([TRANSFORMS.build(t) for t in cfg.train_dataloader.dataset.pipeline])
        model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    model.momentum_encoder.max_iters = 100  # no Runner here to say it
    from crosscl_mm.datasets.proposal_records import proposal_record_path
    batch = pseudo_collate([pipeline(dict(img_path=p, proposals_path=proposal_record_path(
        proposals, photo_dir, p))) for p in paths])
    loss_names = [f'loss_v{a}_v{b}' for k in range(2, terms // 2 + 2)
                  for a, b in ((1, k), (k, 1))]

    def forward(net):
        return net(**net.data_preprocessor(batch, True), mode='loss')

    # RoIAlign pools a bfloat16 map in float32 by itself, as the official code casts the
    # map to the boxes' dtype (SoCo_FPN.py:132); under autocast torchvision's own rule
    # casts too, so this is checked outside it.
    level_map = torch.randn(2, 8, 16, 16)
    boxes = torch.tensor([[[0.1, 0.2, 0.6, 0.9]], [[0.0, 0.0, 1.0, 0.5]]])
    pooled = model._roi_align(level_map.bfloat16(), boxes)
    assert pooled.dtype == torch.float32
    torch.testing.assert_close(pooled, model._roi_align(level_map.bfloat16().float(), boxes),
                               rtol=0, atol=0)

    fp32, amp = step_fp32_and_amp(model, forward, loss_names)
    assert fp32['dtypes'] == {op: {torch.float32} for op in
                              ('convolution', 'roi_align', 'bmm', 'linalg_vector_norm')}
    assert amp['dtypes']['convolution'] == {torch.bfloat16}  # autocast is on
    assert amp['dtypes']['roi_align'] == {torch.float32}  # the maps, as official
    assert amp['dtypes']['linalg_vector_norm'] == {torch.float32}  # F.normalize
    assert amp['dtypes']['bmm'] == {torch.float32}  # the loss's similarities
    for term in loss_names:
        value, ref = amp['losses'][term], fp32['losses'][term]
        assert value.dtype == torch.float32 and torch.isfinite(value)
        assert abs(value.item() - ref.item()) < 0.04, (term, value, ref)
    assert gradient_cosine(amp['grads'], fp32['grads']) > 0.85


def photo_tensor(name, size):
    """A real photo, resized to ``size`` x ``size``, normalised as ImageNet."""
    with Image.open(skimage_photo(name)) as img:
        arr = np.asarray(img.convert('RGB').resize((size, size), Image.BILINEAR), np.float32)
    mean, std = np.array([123.675, 116.28, 103.53]), np.array([58.395, 57.12, 57.375])
    return torch.from_numpy(((arr - mean) / std).astype(np.float32)).permute(2, 0, 1)


def test_detco_under_bfloat16_autocast_matches_float32():
    """DetCo's model from its `_amp` config (ResNet-18 at a quarter width,
    64-px views, nine 32-px patches, a queue of 64 keys), on 4 real photos
    (keys from the mirrored photo): convolutions in bfloat16, the embeddings normalised in
    float32 and InfoNCE's log-softmax on float32 logits; the twelve terms
    (0.06-4.9) agree with float32 within 0.06 and the gradients point the
    same way (measured: within 0.033, at most 0.7% of a term; cosine 0.92)."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, DefaultScope

    cfg = Config.fromfile(osp.join(REPO, 'configs', 'detco_r50_200e_in1k_amp.py'))
    cfg.merge_from_dict({'model.backbone.depth': 18, 'model.backbone.base_channels': 16,
                         'model.level_channels': [16, 32, 64, 128],
                         'model.global_hid_channels': [32, 32, 32, 32],
                         'model.local_hid_channels': [48, 48, 48, 48],
                         'model.queue_len': 64, 'model.feat_dim': 16})
    assert cfg.optim_wrapper.type == 'MixedPrecisionOptimWrapper'
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('crosscl_mm'):
        model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    img = torch.stack([photo_tensor(n, 64) for n in PHOTOS])
    big = torch.stack([photo_tensor(n, 96) for n in PHOTOS])
    # Nine 32-px tiles of each photo, row by row.
    patches = big.unfold(2, 32, 32).unfold(3, 32, 32).permute(0, 2, 3, 1, 4, 5).flatten(1, 2)
    inputs = [img, img.flip(3), patches, big.flip(3).unfold(2, 32, 32).unfold(3, 32, 32)
              .permute(0, 2, 3, 1, 4, 5).flatten(1, 2)]
    terms = [f'loss_{level}_{t}' for level in ('res2', 'res3', 'res4', 'res5')
             for t in ('g2g', 'l2l', 'l2g')]

    fp32, amp = step_fp32_and_amp(model, lambda net: net.loss(inputs), terms)
    assert fp32['dtypes']['convolution'] == {torch.float32}
    assert amp['dtypes']['convolution'] == {torch.bfloat16}
    assert amp['dtypes']['linalg_vector_norm'] == {torch.float32}
    assert amp['dtypes']['_log_softmax'] == {torch.float32}
    for term in terms:
        value, ref = amp['losses'][term], fp32['losses'][term]
        assert value.dtype == torch.float32 and torch.isfinite(value)
        assert abs(value.item() - ref.item()) < 0.06, (term, value, ref)
    assert gradient_cosine(amp['grads'], fp32['grads']) > 0.85


def test_losses_compute_in_float32_under_autocast():
    """InfoNCE's logits and the matched-cosine sums are computed in float32
    inside bfloat16 autocast, from bfloat16 or float32 inputs alike: equal
    to the float32 definitions written here."""
    from crosscl_mm.models.losses import InfoNCELoss, MatchedCosineLoss
    g = torch.Generator().manual_seed(0)
    q, k = (torch.nn.functional.normalize(torch.randn(6, 16, generator=g), dim=1)
            for _ in range(2))
    negatives = torch.nn.functional.normalize(torch.randn(50, 16, generator=g), dim=1)
    logits = torch.cat([(q * k).sum(1, keepdim=True), q @ negatives.t()], 1) / 0.2
    expected = (torch.logsumexp(logits, 1) - logits[:, 0]).mean()
    qa, ka = (torch.nn.functional.normalize(torch.randn(2, 5, 8, generator=g), dim=2)
              for _ in range(2))
    match = (torch.rand(2, 5, 5, generator=g) < 0.3).float()
    expected_cos = -2 * torch.stack([(qa[n] @ ka[n].t() * match[n]).sum() / (match[n].sum() + 1e-6)
                                     for n in range(2)]).mean()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss, _ = InfoNCELoss(0.2)(q, k, negatives)
        cos = MatchedCosineLoss()(qa, ka, match)
        half, _ = InfoNCELoss(0.2)(q.bfloat16(), k.bfloat16(), negatives)
    assert loss.dtype == cos.dtype == half.dtype == torch.float32
    torch.testing.assert_close(loss, expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(cos, expected_cos, rtol=1e-6, atol=1e-6)
    # bfloat16 inputs: only their own rounding (about 0.4% of each value) remains.
    assert abs(half.item() - expected.item()) < 0.05
