"""RegionCL's region swap, alone: the pasted pixels, the official box
sampler (its rounding and its off-grid clamp), RegionCL-D's grid sampler,
the feature cells of a box, the region pooling and the rows of the region
term, each against a computation written here from the definitions in
Annbless/RegionCL ``RegionCLM.py:165-197, necks.py:225-240`` and
CoinCheung/DenseCL ``cutmix.py``, ``resnet.py:232-244``."""
import math
from collections import Counter

import pytest
import torch

from crosscl_mm.models.utils.region_swap import (SwapBox, box_cells, random_pairing,
                                                 region_contrast_rows, region_pool,
                                                 reversal_pairing, sample_grid_box,
                                                 sample_official_box, swap_regions)


def test_composite_has_its_partners_pixels_in_the_box_and_its_own_elsewhere():
    g = torch.Generator().manual_seed(0)
    images = torch.randn(4, 3, 224, 224, generator=g)
    box = SwapBox(127, 32, 96, 160)  # an off-grid start, as the official clamp gives
    for partner in (torch.tensor([3, 2, 1, 0]), torch.tensor([2, 0, 3, 1])):
        out = swap_regions(images, box, partner)
        for i in range(4):
            for y in (31, 32, 100, 191, 192):
                for x in (126, 127, 200, 222, 223):
                    inside = 127 <= x < 223 and 32 <= y < 192
                    src = int(partner[i]) if inside else i
                    assert torch.equal(out[i, :, y, x], images[src, :, y, x]), (i, y, x)
        assert torch.equal(images, torch.randn(4, 3, 224, 224,
                                               generator=torch.Generator().manual_seed(0)))


def official_draw(seed, side=224):
    """RegionCLM.RegionSwapping's four draws, from the definition: w, h =
    32 * randint(3, 6); start = min(round_half_even(randint(0, side) / 32) *
    32, side - 1 - size), x then y."""
    torch.manual_seed(seed)
    w = 32 * torch.randint(3, 6, (1,)).item()
    h = 32 * torch.randint(3, 6, (1,)).item()
    starts = []
    for size in (w, h):
        raw = torch.randint(0, side, (1,)).item()
        q, r = divmod(raw, 32)
        snapped = 32 * (q + (r > 16 or (r == 16 and q % 2 == 1)))  # half to even
        starts.append(min(snapped, side - 1 - size))
    return SwapBox(starts[0], starts[1], w, h)


def test_official_sampler_makes_the_official_draws():
    for seed in range(150):
        expected = official_draw(seed)
        torch.manual_seed(seed)
        assert sample_official_box(224, 224) == expected, seed


def test_official_start_weights_and_off_grid_share_at_224_px():
    """Rounded starts 0, 32, ..., 224 weigh 17, 31, 33, 31, 33, 31, 33, 15
    (/224); the clamp to 223 - size sends the rest to 127, 95 or 63 px: off
    the grid on one axis with P = 0.641, on some axis about 87% of boxes."""
    weights = [17, 31, 33, 31, 33, 31, 33, 15]
    n = 12000
    g = torch.Generator().manual_seed(1)
    boxes = [sample_official_box(224, 224, generator=g) for _ in range(n)]
    for size in (96, 128, 160):
        starts = Counter(b.x0 for b in boxes if b.width == size)
        count = sum(starts.values())
        assert abs(count / n - 1 / 3) < 0.015
        limit = 223 - size
        expected = {32 * i: w / 224 for i, w in enumerate(weights) if 32 * i <= limit}
        expected[limit] = expected.get(limit, 0) + sum(w for i, w in enumerate(weights)
                                                       if 32 * i > limit) / 224
        assert set(starts) == set(expected), size
        for start, p in expected.items():
            assert abs(starts[start] / count - p) < 4 * math.sqrt(p * (1 - p) / count) + 1e-3
    off_x = sum(b.x0 % 32 != 0 for b in boxes) / n
    off_any = sum(b.x0 % 32 != 0 or b.y0 % 32 != 0 for b in boxes) / n
    assert abs(off_x - (112 + 143 + 176) / 224 / 3) < 0.015
    assert abs(off_any - (1 - (1 - 431 / 672) ** 2)) < 0.015
    assert all(b.x0 + b.width <= 223 and b.y0 + b.height <= 223 for b in boxes)  # px 223 never


def test_feature_cells_of_official_boxes_sit_one_cell_before_clamped_pixels():
    # On the grid: cells are pixels / 32.
    assert box_cells(SwapBox(64, 32, 96, 128)) == SwapBox(2, 1, 3, 4)
    # Clamped to 223 - 96 = 127 px: floor(127 / 32) = cell 3 (pixels 96-127), while the
    # pasted pixels 127-222 lie in cells 3-6 and fill cell 6 all but one column.
    assert box_cells(SwapBox(127, 95, 96, 128)) == SwapBox(3, 2, 3, 4)
    assert box_cells(SwapBox(63, 0, 160, 96)) == SwapBox(1, 0, 5, 3)


def test_grid_sampler_is_on_the_grid_and_never_touches_the_last_row_or_column():
    g = torch.Generator().manual_seed(2)
    seen = Counter()
    for _ in range(6000):
        box = sample_grid_box(224, 224, generator=g)
        assert box.x0 % 32 == 0 and box.y0 % 32 == 0
        assert box.width // 32 in (3, 4, 5) and box.height // 32 in (3, 4, 5)
        assert box.x0 + box.width <= 192 and box.y0 + box.height <= 192
        seen[(box.width // 32, box.x0 // 32)] += 1
    for size in (3, 4, 5):  # start cell uniform over 0 .. 7 - size - 1
        starts = [seen[(size, s)] for s in range(7 - size)]
        assert all(c > 0 for c in starts) and seen[(size, 7 - size)] == 0
        assert max(starts) / min(starts) < 1.3
    torch.manual_seed(3)  # cutmix.py's draws, in its order
    h, w = torch.randint(3, 6, (2,)).tolist()
    row = torch.randint(0, 7 - h, (1,))[0].item()
    col = torch.randint(0, 7 - w, (1,))[0].item()
    torch.manual_seed(3)
    assert sample_grid_box(224, 224) == SwapBox(32 * col, 32 * row, 32 * w, 32 * h)


def test_region_pool_is_the_mean_over_box_cells_and_over_the_rest():
    g = torch.Generator().manual_seed(4)
    feats = torch.randn(3, 5, 7, 7, generator=g)
    cells = SwapBox(3, 2, 3, 4)
    paste, canvas = region_pool(feats, cells)
    for n in range(3):
        inside = [feats[n, :, y, x] for y in range(7) for x in range(7)
                  if 3 <= x < 6 and 2 <= y < 6]
        outside = [feats[n, :, y, x] for y in range(7) for x in range(7)
                   if not (3 <= x < 6 and 2 <= y < 6)]
        assert len(inside) == 12 and len(outside) == 37
        torch.testing.assert_close(paste[n], torch.stack(inside).mean(0))
        torch.testing.assert_close(canvas[n], torch.stack(outside).mean(0))
    with pytest.raises(ValueError, match='do not fit a 7x7'):
        region_pool(feats, SwapBox(5, 0, 3, 3))


def test_region_rows_released_and_corrected_intra_negatives():
    """Canvas i's intra negative is the paste on composite i; image j's paste
    lies on composite a with partner[a] = j, so its canvas is c_a. The
    released code takes c[partner[j]]: the same for a permutation that is
    its own inverse, another image's canvas otherwise."""
    g = torch.Generator().manual_seed(5)
    canvas, paste = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
    partner = torch.tensor([1, 2, 0])  # a 3-cycle: not its own inverse
    composite_of = {int(partner[a]): a for a in range(3)}
    queries, intra = region_contrast_rows(canvas, paste, partner, 'corrected')
    for i in range(3):
        assert torch.equal(queries[i], canvas[i]) and torch.equal(intra[i], paste[i])
        a = composite_of[i]
        assert torch.equal(queries[3 + i], paste[a]) and torch.equal(intra[3 + i], canvas[a])
    queries_r, intra_r = region_contrast_rows(canvas, paste, partner, 'as_released')
    assert torch.equal(queries_r, queries) and torch.equal(intra_r[:3], intra[:3])
    for j in range(3):
        assert torch.equal(intra_r[3 + j], canvas[int(partner[j])])
        assert not torch.equal(intra_r[3 + j], intra[3 + j])
    reversal = reversal_pairing(4)
    c4, p4 = torch.randn(4, 4, generator=g), torch.randn(4, 4, generator=g)
    for a, b in zip(region_contrast_rows(c4, p4, reversal, 'as_released'),
                    region_contrast_rows(c4, p4, reversal, 'corrected')):
        assert torch.equal(a, b)


def test_pairings_and_clear_errors():
    assert reversal_pairing(4).tolist() == [3, 2, 1, 0]
    assert sorted(random_pairing(6, torch.Generator().manual_seed(0)).tolist()) == list(range(6))
    with pytest.raises(ValueError, match='even per-GPU batch'):
        reversal_pairing(3)
    with pytest.raises(ValueError, match='at least 161 px'):
        sample_official_box(160, 224)
    assert sample_official_box(161, 161).y0 >= 0
    with pytest.raises(ValueError, match='multiples of 32'):
        sample_grid_box(200, 224)
    with pytest.raises(ValueError, match='more than 5 cells'):
        sample_grid_box(160, 224)
    assert sample_grid_box(96, 96, min_cells=1, max_cells=2).width in (32, 64)


def test_info_nce_row_negatives_add_one_column_per_query():
    from crosscl_mm.models.losses import InfoNCELoss
    g = torch.Generator().manual_seed(6)
    q, k, r = (torch.nn.functional.normalize(torch.randn(5, 8, generator=g), dim=1)
               for _ in range(3))
    queue = torch.nn.functional.normalize(torch.randn(7, 8, generator=g), dim=1)
    loss, acc = InfoNCELoss(0.2)(q, k, queue, row_negatives=r)
    pos = torch.exp((q * k).sum(1) / 0.2)
    others = torch.exp((q * r).sum(1) / 0.2) + torch.exp(q @ queue.t() / 0.2).sum(1)
    torch.testing.assert_close(loss, -torch.log(pos / (pos + others)).mean())
    top = ((q * k).sum(1) > torch.maximum((q * r).sum(1), (q @ queue.t()).max(1).values))
    torch.testing.assert_close(acc, top.float().mean() * 100)
