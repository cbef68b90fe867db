"""Cross-view region retrieval (tools/analysis_tools/region_retrieval.py):
the hit rule against a brute-force nearest neighbour, the whole feature path
on hand-built maps whose answer is known, the encoder against the pretrained
model's own forward, and the command line on real photos."""
import json
import os.path as osp
import sys

import numpy as np
import pytest
import torch

import crosscl_mm  # noqa: F401
from conftest import REPO, skimage_photo
from test_converters import r50_crosscl

sys.path.insert(0, osp.join(REPO, 'tools', 'analysis_tools'))
import region_retrieval  # noqa: E402


def brute_force_hits(query, keys, valid):
    """For each counted window, loop over every other valid candidate."""
    hits, counted = np.zeros(valid.shape, bool), np.zeros(valid.shape, bool)
    for n in range(valid.shape[0]):
        candidates = [j for j in range(valid.shape[1]) if valid[n, j]]
        if len(candidates) < 2:
            continue
        for i in candidates:
            counted[n, i] = True
            own = float(np.dot(query[n, i], keys[n, i]))
            hits[n, i] = all(own > float(np.dot(query[n, i], keys[n, j]))
                             for j in candidates if j != i)
    return hits, counted


def test_hits_match_a_brute_force_nearest_neighbour():
    rng = np.random.default_rng(0)
    n, k, c = 6, 9, 4  # few dimensions: many near misses
    query = rng.normal(size=(n, k, c))
    keys = query + rng.normal(scale=0.8, size=(n, k, c))
    query /= np.linalg.norm(query, axis=-1, keepdims=True)
    keys /= np.linalg.norm(keys, axis=-1, keepdims=True)
    valid = rng.random((n, k)) < 0.7
    valid[0] = False          # a pair without valid windows
    valid[1] = False
    valid[1, 3] = True        # a pair with one: nothing to retrieve it from
    valid[2] = True
    keys[2, 5] = keys[2, 4]   # a tie: counted as a miss for window 4 (and 5)
    query[2, 4] = keys[2, 4]
    valid[3, [1, 2]] = True, False
    keys[3, 2] = query[3, 1]  # an invalid window is no candidate, however close
    expected_hits, expected_counted = brute_force_hits(query, keys, valid)
    hits, counted = region_retrieval.retrieved_windows(
        torch.as_tensor(query), torch.as_tensor(keys), torch.as_tensor(valid))
    np.testing.assert_array_equal(counted.numpy(), expected_counted)
    np.testing.assert_array_equal(hits.numpy(), expected_hits)
    assert not hits[2, 4] and 0 < hits.sum() < counted.sum()
    assert counted[3].sum() >= 2 and bool(hits[3, 1]) == expected_hits[3, 1]


class HandBuiltEncoder:
    """Returns fixed maps whatever the image: the query view's map for the
    first call, the key view's for the second."""

    def __init__(self, query_map, key_map):
        self.calls = [query_map, key_map]

    def maps(self, img):
        return {'p3': self.calls.pop(0).expand(img.shape[0], -1, -1, -1)}


def test_chance_level_is_one_over_the_candidates_of_each_counted_window():
    """Pair 0: three valid windows, each one of 3 candidates; pair 1: one valid
    window, no other candidate, not counted; pair 2: two windows, 1 of 2.
    Chance = (3 x 1/3 + 2 x 1/2) / 5 windows = 40%."""
    valid = torch.tensor([[True, True, True, False],
                          [True, False, False, False],
                          [True, True, False, False]])
    assert region_retrieval.counted_windows(valid).tolist() == [
        [True, True, True, False], [False, False, False, False], [True, True, False, False]]
    assert region_retrieval.chance_percent(valid) == pytest.approx(40.0)


def test_known_answer_on_hand_built_maps():
    """The key map is the query map moved by (2, 1) cells, so a window and
    the same cells moved into the key view pool to the same vector. Windows 2
    and 4 get each other's mapped box (both miss), window 6 gets window 5's
    (a tie: both miss), window 7 is invalid (not counted, and no candidate
    though its box shows window 8's cells); every other window is retrieved."""
    from crosscl_mm.registry import MODELS
    stride, h, w = 8, 12, 12
    torch.manual_seed(0)
    query_map = torch.zeros(1, 32, h, w)
    query_map[..., 1:9, 1:9] = torch.randn(1, 32, 8, 8)
    key_map = torch.zeros_like(query_map)
    key_map[..., 2:10, 3:11] = query_map[..., 1:9, 1:9]   # moved down 1, right 2 cells
    cells = [(y, x) for y in (2, 4, 6) for x in (2, 4, 6)]  # 9 windows of 2x2 cells
    query_boxes = np.array([[x * stride, y * stride, (x + 2) * stride, (y + 2) * stride]
                            for y, x in cells], dtype=np.float32)
    key_boxes = query_boxes + np.array([2, 1, 2, 1], dtype=np.float32) * stride
    key_boxes[[2, 4]] = key_boxes[[4, 2]]
    key_boxes[6] = key_boxes[5]
    key_boxes[7] = key_boxes[8]  # invalid: no candidate, though it shows window 8's cells
    valid = np.ones(9, bool)
    valid[7] = False
    views = np.zeros((1, 96, 96, 3), np.uint8)
    pairs = region_retrieval.ViewPairs(views, views, query_boxes[None], key_boxes[None],
                                       valid[None])
    batches = region_retrieval.view_batches(
        MODELS.build(dict(type='RegionPairDataPreprocessor')), pairs)
    feats = region_retrieval.features(HandBuiltEncoder(query_map, key_map), batches, pairs,
                                      ['p3'])
    query, keys = feats['p3']
    assert query.shape == keys.shape == (1, 9, 32)
    torch.testing.assert_close(query[0, 0], keys[0, 0])  # the same cells, pooled alike
    hits, counted = region_retrieval.retrieved_windows(query, keys, torch.as_tensor(valid[None]))
    assert counted[0].tolist() == [True] * 7 + [False, True]
    assert torch.nonzero(hits[0]).flatten().tolist() == [0, 1, 3, 8]


def test_norm_statistics_are_the_average_over_batches():
    """PreciseBN's estimate: the plain mean of the batches' channel means and
    of their unbiased variances, whatever the layer held before."""
    from torch import nn

    class Backbone(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.norm = nn.BatchNorm2d(4)

        def forward(self, x):
            y = self.norm(self.conv(x))
            return y, y, y, y

    torch.manual_seed(0)
    backbone = Backbone()
    backbone.norm.running_mean.fill_(5.0)  # stale statistics are replaced, not averaged in
    encoder = region_retrieval.Encoder('tiny', backbone, None, ('c3',))
    batches = [torch.randn(2, 3, 8, 8) * s + s for s in (1.0, 2.0, 3.0)]
    encoder.estimate_norm_statistics(batches)
    with torch.no_grad():
        inputs = [backbone.conv(b) for b in batches]
    mean = torch.stack([x.mean(dim=(0, 2, 3)) for x in inputs]).mean(0)
    var = torch.stack([x.transpose(0, 1).flatten(1).var(dim=1) for x in inputs]).mean(0)
    torch.testing.assert_close(backbone.norm.running_mean, mean)
    torch.testing.assert_close(backbone.norm.running_var, var)
    assert not backbone.training and backbone.norm.momentum == 0.1


@pytest.fixture(scope='module')
def crosscl_checkpoint(module_tmp_path):
    """A ResNet-50 + FPN CrossCL checkpoint (online encoder and queue only:
    what the converter reads), with non-trivial BN statistics."""
    model = r50_crosscl()
    path = str(module_tmp_path / 'epoch_1.pth')
    state = {k: v for k, v in model.state_dict().items()
             if not k.startswith('momentum_encoder.')}
    torch.save({'meta': {'epoch': 1}, 'state_dict': state}, path)
    return model, path


def test_encoder_computes_the_pretrained_models_own_maps(crosscl_checkpoint, tmp_path):
    """A CrossCL checkpoint read through the converter: C3, C4 from the
    backbone and P3, P4 from the FPN equal the model's own forward; P2 and P5
    (not pretrained) are not offered. Without an FPN only C levels remain."""
    from crosscl_mm.converters import convert
    model, path = crosscl_checkpoint
    state, note = region_retrieval.mmdet_weights(path)
    assert note == 'read as crosscl_mm'
    encoder = region_retrieval.build_encoder('crosscl', state)
    assert encoder.levels == ('c2', 'c3', 'c4', 'c5', 'p3', 'p4')
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        maps = encoder.maps(x)
        c3, c4, c5 = model.backbone(x)
        p3, p4 = model.fpn((c3, c4, c5))
    for level, expected in dict(c3=c3, c4=c4, p3=p3, p4=p4).items():
        torch.testing.assert_close(maps[level], expected, rtol=1e-5, atol=1e-5)

    # The converter's own file gives the same network; without --with-fpn, no P level.
    converted = str(tmp_path / 'backbone_only.pth')
    ckpt = torch.load(path, weights_only=True)
    torch.save({'state_dict': convert(ckpt, 'mmdet').state_dict,
                'meta': {'converter': 'crosscl_mm'}}, converted)
    state, note = region_retrieval.mmdet_weights(converted)
    assert note == 'converted for mmdet'
    assert region_retrieval.build_encoder('backbone only', state).levels == \
        ('c2', 'c3', 'c4', 'c5')


def test_command_line_on_photos(crosscl_checkpoint, tmp_path, capsys):
    from crosscl_mm.utils.sample_photos import export_photo_folder
    skimage_photo('chelsea.png')
    skimage_photo('coffee.png')
    photos = str(tmp_path / 'held_out')
    export_photo_folder(photos, ['chelsea.png', 'coffee.png'], max_side=160)
    _, ckpt = crosscl_checkpoint
    out = str(tmp_path / 'retrieval.json')
    args = [photos, f'crosscl={ckpt}', '--random-init', '--pairs', '1', '--seeds', '0', '1',
            '--levels', 'c4', 'p4', '--out', out]
    report = region_retrieval.main(args)
    printed = capsys.readouterr().out
    assert report == json.load(open(out))
    assert report['photos'] == 2 and report['seeds'] == [0, 1]
    for name in ('random init', 'crosscl'):
        scores = report['models'][name]['percent']
        assert sorted(scores) == ['c4', 'p4'] and all(len(v) == 2 for v in scores.values())
        assert all(0 <= s <= 100 for v in scores.values() for s in v)
        mean, std = region_retrieval.mean_std(scores['p4'])
        assert f'| {name} | ' in printed and f'{mean:.1f} ± {std:.1f}' in printed
    assert 0 < report['chance'][0] < 100
    # The second table: crosscl minus random init, seed by seed.
    diff = [a - b for a, b in zip(report['models']['crosscl']['percent']['p4'],
                                  report['models']['random init']['percent']['p4'])]
    mean, std = region_retrieval.mean_std(diff)
    assert 'change from random init on the same views' in printed
    assert f'| crosscl | ' in printed.split('change from random init')[1]
    assert f'{mean:+.1f} ± {std:.1f} |' in printed.split('change from random init')[1]

    with pytest.raises(SystemExit) as exc:
        region_retrieval.main([photos, str(tmp_path / 'missing.pth')])
    assert exc.value.code == 2
    assert 'missing.pth: no such file' in capsys.readouterr().err


def test_the_same_seed_draws_the_same_view_pairs():
    pipeline = region_retrieval.pipeline_without_packing(region_retrieval.DEFAULT_VIEW_CONFIG)
    images = [skimage_photo('astronaut.png')]
    first, again, other = (region_retrieval.draw_view_pairs(pipeline, images, 3, seed)
                           for seed in (0, 0, 1))
    for name in ('query_views', 'key_views', 'query_boxes', 'key_boxes', 'valid'):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert not np.array_equal(first.key_boxes, other.key_boxes)
    assert first.query_views.shape[0] == 3 and (first.valid.sum(axis=1) >= 2).all()
