"""SoCo-C4 against a re-derivation of the official forward (github
hologerry/SoCo contrast/models/SoCo_C4.py, contrast/resnet.py, mlps.py,
box_util.py, data/bboxs_utils.py:262-275), written below from those
definitions with torch and torchvision only: loss terms, gradients, the
momentum update and the online BatchNorm statistics after one step.

ResNet-50 at base width 16, not ResNet-18: the official C4 model builds
``Proj_Head()`` with its default ``in_dim=2048`` (SoCo_C4.py:43, mlps.py:87),
which only a Bottleneck ResNet's res5 gives; the structure is R50's, the
widths are read from the weights."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import BaseDataElement, InstanceData
from PIL import Image

import crosscl_mm  # noqa: F401
from crosscl_mm.datasets.geometry import boxes_as_crop_fractions, flip_crop_fractions
from crosscl_mm.registry import MODELS

from conftest import skimage_photo
from test_soco_model import off_roi_align, perturb, set_momentum_updates
from test_soco_pipeline import official_tensor

# ---------------------------------------------------------------------------
# The official forward. W maps official names (encoder.*, projector.*,
# predictor.*, encoder_k.*, projector_k.*) to tensors.


def off_bn(x, W, p):  # SyncBN in train mode; the running statistics are updated in W
    return F.batch_norm(x, W[p + 'running_mean'], W[p + 'running_var'], W[p + 'weight'],
                        W[p + 'bias'], True, 0.1, 1e-5)


def off_layer(x, W, p, layer, bn=off_bn):  # resnet.py:64-102, _make_layer; stride on the 3x3
    b = 0
    while f'{p}layer{layer}.{b}.conv1.weight' in W:
        q = f'{p}layer{layer}.{b}.'
        stride = 2 if layer > 1 and b == 0 else 1
        y = F.relu(bn(F.conv2d(x, W[q + 'conv1.weight']), W, q + 'bn1.'))
        y = F.relu(bn(F.conv2d(y, W[q + 'conv2.weight'], stride=stride, padding=1), W,
                      q + 'bn2.'))
        y = bn(F.conv2d(y, W[q + 'conv3.weight']), W, q + 'bn3.')
        if q + 'downsample.0.weight' in W:
            x = bn(F.conv2d(x, W[q + 'downsample.0.weight'], stride=stride), W,
                   q + 'downsample.1.')
        x = F.relu(y + x)
        b += 1
    return x


def off_c4(x, W, p, bn=off_bn):  # ResNet.forward up to layer3 (resnet.py:239-246)
    x = F.max_pool2d(F.relu(bn(F.conv2d(x, W[p + 'conv1.weight'], stride=2, padding=3),
                               W, p + 'bn1.')), 3, 2, 1)
    return off_layer(off_layer(off_layer(x, W, p, 1, bn), W, p, 2, bn), W, p, 3, bn)


def off_encoder(x, W, p, bboxs):  # ResNet.forward, use_roi_align_on_c4, head_type 'pass'
    # roi_align_feature_map: output_size 14 (resnet.py:149), aligned, boxes x C4's (W, H)
    aligned = off_roi_align(off_c4(x, W, p), bboxs, output_size=(14, 14))
    c5 = off_layer(aligned, W, p, 4)
    c5 = F.avg_pool2d(c5, 7, stride=1)  # self.avgpool
    return c5.view(c5.size(0), -1)


def off_mlp(x, W, p):  # mlps.MLP: BN1d on (N, C, 1)
    x = F.linear(x, W[p + 'linear1.weight'], W[p + 'linear1.bias'])
    x = off_bn(x.unsqueeze(-1), W, p + 'bn1.').squeeze(-1)
    return F.linear(F.relu(x), W[p + 'linear2.weight'], W[p + 'linear2.bias'])


def off_regression_loss(vectors_q, vectors_k, correspondence):  # SoCo_C4.py:91-103
    N, L, _ = correspondence.shape
    vectors_q = vectors_q.view(N, L, -1)
    vectors_k = torch.transpose(vectors_k.view(N, L, -1), 1, 2)
    sim = torch.bmm(vectors_q, vectors_k)
    loss = (sim * correspondence).sum(-1).sum(-1) / (correspondence.sum(-1).sum(-1) + 1e-6)
    return -2 * loss.mean()


def off_correspondence(ids1, ids2):  # get_correspondence_matrix
    L = len(ids1)
    return torch.Tensor((np.tile(np.reshape(ids1, (L, 1)), (1, L)) ==
                         np.tile(np.reshape(ids2, (1, L)), (L, 1))).astype(float))


def off_forward(W, im_1, im_2, bboxs1, bboxs2, corres, k, K):
    """SoCo_C4.forward (SoCo_C4.py:105-139); returns the two terms."""
    pred_1 = F.normalize(off_mlp(off_mlp(off_encoder(im_1, W, 'encoder.', bboxs1), W,
                                         'projector.'), W, 'predictor.'), dim=1)
    pred_2 = F.normalize(off_mlp(off_mlp(off_encoder(im_2, W, 'encoder.', bboxs2), W,
                                         'projector.'), W, 'predictor.'), dim=1)
    with torch.no_grad():  # _momentum_update_key_encoder, parameters only
        m = 1. - (1. - 0.99) * (np.cos(np.pi * k / K) + 1) / 2.
        for key in list(W):
            for q_prefix, k_prefix in (('encoder.', 'encoder_k.'), ('projector.', 'projector_k.')):
                if key.startswith(k_prefix) and not key.endswith(
                        ('running_mean', 'running_var', 'num_batches_tracked')):
                    W[key] = W[key] * m + W[q_prefix + key[len(k_prefix):]] * (1. - m)
        proj_1_ng = F.normalize(off_mlp(off_encoder(im_1, W, 'encoder_k.', bboxs1), W,
                                        'projector_k.'), dim=1)
        proj_2_ng = F.normalize(off_mlp(off_encoder(im_2, W, 'encoder_k.', bboxs2), W,
                                        'projector_k.'), dim=1)
    return (off_regression_loss(pred_1, proj_2_ng, corres),
            off_regression_loss(pred_2, proj_1_ng, corres.transpose(1, 2)), m)


def official_boxes(sets, crops, flips, view):
    """A view's box sets as the official ``bboxs`` tensor (N, K, 5)."""
    h, w = crops[view][3] - crops[view][1], crops[view][2] - crops[view][0]
    return torch.stack([torch.from_numpy(official_tensor(b, h, w, flips[view]))
                        for b in sets[view]])


def official_state(ours):
    """Our state dict under the official names (SoCo_C4.py:42-48): the
    backbone and the res5 head are one ``encoder``."""
    W = {}
    for key, value in ours.items():
        for mine, theirs in (('momentum_encoder.module.backbone.', 'encoder_k.'),
                             ('momentum_encoder.module.head.', 'encoder_k.'),
                             ('momentum_encoder.module.projector.', 'projector_k.'),
                             ('backbone.', 'encoder.'), ('head.', 'encoder.'),
                             ('projector.', 'projector.'), ('predictor.', 'predictor.')):
            if key.startswith(mine):
                W[theirs + key[len(mine):]] = value.detach().clone()
                break
    return W


# ---------------------------------------------------------------------------

def soco_c4_model(base_channels=16, **kwargs):
    c5 = base_channels * 8 * 4
    return MODELS.build(dict(
        type='SoCoC4', base_momentum=0.99, **kwargs,
        backbone=dict(type='mmdet.ResNet', depth=50, base_channels=base_channels, num_stages=3,
                      strides=(1, 2, 2), dilations=(1, 1, 1), out_indices=(2,),
                      norm_cfg=dict(type='BN'), norm_eval=False),
        head=dict(type='Res5BoxHead', depth=50, base_channels=base_channels),
        projector=dict(type='ProjectionMLP', in_channels=c5, hid_channels=64, out_channels=24),
        predictor=dict(type='ProjectionMLP', in_channels=24, hid_channels=64, out_channels=24)))


def make_views_and_boxes(sizes, rng):
    """Two views of two real photos (given crops and flips) and box sets in
    crop pixels with ids: matches, a padded duplicate, an unmatched box."""
    photos = [Image.open(skimage_photo(name)).convert('RGB').resize((160, 120))
              for name in ('astronaut.png', 'chelsea.png')]
    W, H = photos[0].size
    crops = [(0, 0, W, H), (20, 10, 140, 110)]
    flips = [True, False]
    mean = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1)
    views = []
    for crop, size, flip in zip(crops, sizes, flips):
        batch = []
        for photo in photos:
            img = photo.crop(crop).resize((size, size), Image.BILINEAR)
            arr = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float()
            batch.append(((arr.flip(-1) if flip else arr) - mean) / std)
        views.append(torch.stack(batch))
    sets = [[], []]
    for i in range(2):
        ids1 = [1, 2, 3, 1] if i == 0 else [4, 5, 6, 5]   # a padded duplicate
        ids2 = [2, 1, 3, 9] if i == 0 else [4, 5, 6, 6]   # unmatched / extra twin
        for s, (ids, crop) in enumerate(((ids1, crops[0]), (ids2, crops[1]))):
            cw, ch = crop[2] - crop[0], crop[3] - crop[1]
            rows = []
            for box_id in ids:
                bw, bh = rng.uniform(0.2, 0.9) * cw, rng.uniform(0.2, 0.9) * ch
                x1, y1 = rng.uniform(0, cw - bw), rng.uniform(0, ch - bh)
                rows.append([x1, y1, x1 + bw - 1, y1 + bh - 1, box_id])
            sets[s].append(np.array(rows))
    return views, crops, flips, sets



def samples_of(sets, crops, flips):
    samples = []
    for i in range(2):
        sample = BaseDataElement()
        for view, name in enumerate(('1_2', '2')):
            px = sets[view][i][:, :4]
            fractions = boxes_as_crop_fractions(px, crops[view]).astype(np.float32)
            if flips[view]:
                fractions = flip_crop_fractions(fractions)
            sample.set_field(InstanceData(
                boxes=torch.from_numpy(fractions),
                ids=torch.from_numpy(sets[view][i][:, 4]).long(),
                levels=torch.zeros(len(px), dtype=torch.long)), f'regions_{name}')
        samples.append(sample)
    return samples


def test_loss_gradients_and_momentum_match_the_official_forward(one_thread):
    # View 2 at 72 px: C4 is 5x5 where 72 / 16 = 4.5, so boxes scaled by the
    # map's size (official) and by 1 / 16 of view pixels differ.
    sizes = (64, 72)
    torch.manual_seed(0)
    model = soco_c4_model()
    model.init_weights()
    rng = torch.Generator().manual_seed(1)
    perturb(model, rng)
    online = model._online_encoder()
    model.momentum_encoder.update_parameters(online)   # the copy
    perturb(model, rng)                                # online != target now
    k, K = 7, 20
    set_momentum_updates(model.momentum_encoder, k)
    model.momentum_encoder.max_iters = K
    model.train()

    views, crops, flips, sets = make_views_and_boxes(sizes, np.random.RandomState(2))
    samples = samples_of(sets, crops, flips)
    W = official_state(model.state_dict())
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    ours = model.loss([v.clone() for v in views], samples)
    ours_grads = torch.autograd.grad(ours['loss_v1_v2'] + ours['loss_v2_v1'],
                                     list(params.values()))

    # Official, on the same weights, views and boxes.
    def tensor(view):
        return official_boxes(sets, crops, flips, view)
    corres = torch.stack([off_correspondence(a[:, 4], b[:, 4]) for a, b in zip(*sets)])
    leaves = {n: W[n].requires_grad_() for n in W
              if n.startswith(('encoder.', 'projector.', 'predictor.')) and
              W[n].dtype.is_floating_point and not n.endswith(('running_mean', 'running_var'))}
    term_12, term_21, m = off_forward(W, views[0].clone(), views[1].clone(), tensor(0),
                                      tensor(1), corres, k, K)
    official = dict(loss_v1_v2=term_12, loss_v2_v1=term_21)
    diffs = {n: abs(float(ours[n].detach()) - float(v.detach())) for n, v in official.items()}
    print('\nabs diff per term:', {n: f'{d:.1e}' for n, d in diffs.items()},
          'loss', float(term_12.detach() + term_21.detach()))
    assert max(diffs.values()) < 1e-5, diffs
    assert all((c.sum() > 0) for c in corres) and corres[0, 3, 3] == 0  # matches and non-matches
    assert float(ours['momentum']) == pytest.approx(m, rel=0, abs=1e-15)

    # Gradients of every online parameter.
    off_grads = dict(zip(leaves, torch.autograd.grad(term_12 + term_21, list(leaves.values()))))
    names = official_state({n: g for n, g in zip(params, ours_grads)})
    assert set(names) == set(off_grads)
    # Biases whose output only reaches a BN (through linear maps) have gradient 0 up to
    # rounding on both sides; every other tensor agrees relative to its largest gradient.
    scale = max(float(g.abs().max()) for g in off_grads.values())
    before_bn = ('projector.linear1.bias', 'predictor.linear1.bias', 'projector.linear2.bias')
    for n in before_bn:
        assert max(float(names[n].abs().max()), float(off_grads[n].abs().max())) < 1e-6 * scale
    errors = {n: float((names[n] - off_grads[n]).abs().max()) /
              (float(off_grads[n].abs().max()) + 1e-6 * scale) for n in names if n not in before_bn}
    worst = max(errors, key=errors.get)
    print('largest relative gradient difference:', worst, f'{errors[worst]:.1e}')
    assert errors[worst] < 1e-4, (worst, errors[worst])
    # The momentum update (res5 included: it is part of the official encoder_k).
    updated = official_state(model.state_dict())
    for name in ('encoder_k.layer1.0.conv1.weight', 'encoder_k.layer4.2.conv3.weight',
                 'encoder_k.layer4.0.downsample.1.bias', 'projector_k.linear2.bias'):
        torch.testing.assert_close(updated[name], W[name].detach(), rtol=0, atol=1e-7)
    # The online BN statistics after one step: view 1 then view 2, per call.
    for name in ('encoder.bn1.running_mean', 'encoder.layer3.5.bn3.running_var',
                 'encoder.layer4.0.bn2.running_mean', 'encoder.layer4.2.bn3.running_var',
                 'projector.bn1.running_mean', 'predictor.bn1.running_var'):
        torch.testing.assert_close(updated[name], W[name].detach(), rtol=1e-5, atol=1e-6)


def test_under_bfloat16_autocast_roi_align_and_loss_stay_in_float32(one_thread):
    """One batch through SoCo-C4 in float32 and in the AMP wrapper's bfloat16
    autocast (the `_amp` configs on this CPU), from the same state: the convs
    run in bfloat16, RoIAlign on C4 cast to float32 (official
    ``resnet.py:225``), the embeddings' normalisation and the loss's
    similarities in float32; the losses agree within 0.05 (of about -0.3 ... 2)
    and the gradients are finite and close to float32's."""
    import copy

    from mmengine.optim import OptimWrapper

    from crosscl_mm.engine.optimizers import MixedPrecisionOptimWrapper
    from test_amp import FirstTensorDtypes

    torch.manual_seed(0)
    model = soco_c4_model(base_channels=8)
    model.init_weights()
    perturb(model, torch.Generator().manual_seed(1))
    model.momentum_encoder.max_iters = 10
    model.train()
    views, crops, flips, sets = make_views_and_boxes((48, 56), np.random.RandomState(2))
    samples = samples_of(sets, crops, flips)
    runs = {}
    for label, wrapper_type in (('fp32', OptimWrapper), ('amp', MixedPrecisionOptimWrapper)):
        twin = copy.deepcopy(model)
        params = [p for p in twin.parameters() if p.requires_grad]
        wrapper = wrapper_type(optimizer=torch.optim.SGD(params, lr=0.1))
        with FirstTensorDtypes(['convolution', 'roi_align', 'bmm',
                                'linalg_vector_norm']) as dtypes:
            with wrapper.optim_context(twin):
                losses = twin.loss([v.clone() for v in views], samples)
            wrapper.backward(losses['loss_v1_v2'] + losses['loss_v2_v1'])
        runs[label] = dict(losses=losses, dtypes=dtypes.seen, grads=[p.grad for p in params])
    fp32, amp = runs['fp32'], runs['amp']
    assert all(d == {torch.float32} for d in fp32['dtypes'].values()), fp32['dtypes']
    assert amp['dtypes']['convolution'] == {torch.bfloat16}
    assert amp['dtypes']['roi_align'] == {torch.float32}
    assert amp['dtypes']['bmm'] == {torch.float32}
    assert amp['dtypes']['linalg_vector_norm'] == {torch.float32}
    for term in ('loss_v1_v2', 'loss_v2_v1'):
        value, ref = amp['losses'][term], fp32['losses'][term]
        assert value.dtype == torch.float32
        assert abs(value.item() - ref.item()) < 0.05, (term, value, ref)
    low = torch.cat([g.flatten() for g in amp['grads']])
    high = torch.cat([g.flatten() for g in fp32['grads']])
    assert low.dtype == torch.float32 and torch.isfinite(low).all()
    cosine = F.cosine_similarity(low, high, dim=0).item()
    print('\ngradient cosine amp vs fp32:', cosine)
    assert cosine > 0.85  # measured 0.96 (bfloat16, 2 images x 4 boxes)


def test_c4_views_pair_the_same_unjittered_proposals():
    """The C4 recipe's views (official ImageFolderImageAsymBboxCutout,
    dataset.py:432-500): view 1 the whole image and view 2 a crop of scale
    0.6-1, both 224 px; one choice of proposals for the pair, in the same
    order in both sets, view 1's not jittered (x / W of the proposal itself,
    or 1 - x when flipped); pads repeat ids both sets hold."""
    import os.path as osp
    import random

    from mmengine.config import Config

    from conftest import REPO
    from crosscl_mm.registry import TRANSFORMS
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'soco_r50c4_400e_in1k.py'))
    views = TRANSFORMS.build(cfg.train_dataloader.dataset.pipeline[2])
    img = np.asarray(Image.open(skimage_photo('chelsea.png')).convert('RGB'))
    H, W = img.shape[:2]
    proposals = np.array([[10, 20, 120, 200], [50, 60, 300, 250], [200, 10, 420, 290],
                          [0, 0, W - 1, H - 1], [100, 100, 160, 140], [300, 150, 400, 280]],
                         dtype=np.float64)
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    for _ in range(20):
        out = views.transform(dict(img=img, proposals=proposals))
        assert [v.shape for v in out['img']] == [(224, 224, 3)] * 2
        one, two = out['regions_1_2'], out['regions_2']
        assert len(one['ids']) == len(two['ids']) == 4
        chosen = min(4, len(set(one['ids'].tolist())))
        assert (one['ids'][:chosen] == two['ids'][:chosen]).all()
        assert set(one['ids'][chosen:]) <= set(two['ids']) and \
            set(two['ids'][chosen:]) <= set(one['ids'])
        expected = (proposals[one['ids'] - 1] / np.array([W, H, W, H])).astype(np.float32)
        if out['flips'][0]:
            expected = flip_crop_fractions(expected)
        np.testing.assert_allclose(one['boxes'], expected, rtol=0, atol=1e-6)
