"""crosscl_mm.RepeatFactorInfiniteSampler against detectron2's
RepeatFactorTrainingSampler (hologerry/detectron2 = upstream f71d845,
detectron2/data/samplers/distributed_sampler.py), computed here by hand: the
repeat factors of a small dataset, the integer and fractional parts of every
pass, the average over many passes, the stream itself, and the ranks' split."""
import itertools
import math
from collections import Counter

import pytest
import torch

import crosscl_mm.datasets.repeat_factor_sampler as rfs
from crosscl_mm.datasets import RepeatFactorInfiniteSampler

# 10 images; category 1 in all of them, 2 in two, 3 in one, and one image with none.
IMAGES = [[1], [1, 2], [1, 2, 3], [1, 1], [1], [1], [1], [1], [1], []]
THRESH = 0.5
# f(1) = 9/10, f(2) = 2/10, f(3) = 1/10; r(c) = max(1, sqrt(0.5 / f(c))).
R2, R3 = math.sqrt(0.5 / 0.2), math.sqrt(0.5 / 0.1)  # 1.581..., 2.236...
EXPECTED = [1.0, R2, R3, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]


class CatIds:
    """What the sampler needs of an mmdet dataset."""

    def __init__(self, cats):
        self.cats = cats

    def __len__(self):
        return len(self.cats)

    def get_cat_ids(self, index):
        return self.cats[index]


def sampler(monkeypatch=None, rank=0, world=1, **kwargs):
    if monkeypatch is not None:
        monkeypatch.setattr(rfs, 'get_dist_info', lambda: (rank, world))
    return RepeatFactorInfiniteSampler(CatIds(IMAGES), repeat_thresh=THRESH, seed=7, **kwargs)


def test_repeat_factors_are_the_rarest_category_s():
    assert sampler().repeat_factors.tolist() == pytest.approx(EXPECTED, rel=1e-6)
    assert sampler().repeat_factors.dtype == torch.float32  # detectron2's dtype


def passes_without_shuffle(stream, count):
    """Split an unshuffled stream into passes: each pass lists the indices in
    order, and image 0 (factor 1) opens every pass."""
    out, current = [], []
    for index in stream:
        if current and index < current[-1]:
            out.append(current)
            current = []
            if len(out) == count:
                return out
        current.append(index)


def test_every_pass_repeats_each_image_floor_or_ceil_times_and_r_on_average():
    passes = passes_without_shuffle(iter(sampler(shuffle=False)), 4000)
    totals = Counter()
    for one in passes:
        counts = Counter(one)
        for i, r in enumerate(EXPECTED):
            assert counts[i] in (math.floor(r), math.floor(r) + 1) if r % 1 else counts[i] == r
        totals.update(counts)
    for i, r in enumerate(EXPECTED):
        # 4000 passes: the standard error of the fractional part's mean is < 0.008
        assert totals[i] / len(passes) == pytest.approx(r, abs=0.04)
    # mmdet's ClassBalancedDataset would repeat image 1 ceil(1.58) = 2 times every time.
    assert totals[1] / len(passes) < 1.7


def detectron2_stream(seed, factors, passes):
    """RepeatFactorTrainingSampler._infinite_indices written out: per pass,
    one uniform per image for the stochastic rounding, then a permutation,
    both from one generator seeded once."""
    g = torch.Generator()
    g.manual_seed(seed)
    factors = torch.tensor(factors, dtype=torch.float32)
    int_part = torch.trunc(factors)
    frac_part = factors - int_part
    out = []
    for _ in range(passes):
        rands = torch.rand(len(frac_part), generator=g)
        reps = int_part + (rands < frac_part).float()
        indices = []
        for index, rep in enumerate(reps):
            indices.extend([index] * int(rep.item()))
        indices = torch.tensor(indices, dtype=torch.int64)
        out.extend(indices[torch.randperm(len(indices), generator=g)].tolist())
    return out


def test_the_stream_is_detectron2_s():
    expected = detectron2_stream(7, EXPECTED, 50)
    got = list(itertools.islice(iter(sampler()), len(expected)))
    assert got == expected
    assert list(itertools.islice(iter(sampler()), 100)) == got[:100]  # same seed, same stream


def test_ranks_take_every_world_size_th_element(monkeypatch):
    full = list(itertools.islice(iter(sampler(monkeypatch, 0, 1)), 300))
    parts = [list(itertools.islice(iter(sampler(monkeypatch, rank, 3)), 100))
             for rank in range(3)]
    for rank in range(3):
        assert parts[rank] == full[rank::3]
    assert sorted(sum(parts, [])) == sorted(full)
    assert len(sampler(monkeypatch, 1, 3)) == math.ceil(sum(EXPECTED) / 3)


def test_seed_drawn_and_shared_when_not_given(monkeypatch):
    monkeypatch.setattr(rfs, 'sync_random_seed', lambda: 123)
    drawn = RepeatFactorInfiniteSampler(CatIds(IMAGES), repeat_thresh=THRESH)
    assert drawn.seed == 123
    with pytest.raises(ValueError, match='repeat_thresh'):
        RepeatFactorInfiniteSampler(CatIds(IMAGES), repeat_thresh=0)


def test_registered_for_configs():
    from mmengine.registry import DATA_SAMPLERS
    built = DATA_SAMPLERS.build(dict(type='crosscl_mm.RepeatFactorInfiniteSampler',
                                     repeat_thresh=THRESH, seed=7),
                                default_args=dict(dataset=CatIds(IMAGES)))
    assert isinstance(built, RepeatFactorInfiniteSampler)
