"""Sliding windows and box mapping between crops, against brute force."""
import math
import random

import numpy as np
import pytest

from crosscl_mm.datasets.geometry import boxes_inside_view, map_boxes_between_crops, sliding_windows

from crosscl_reference import reference_anchor_mapping, reference_windows


@pytest.mark.parametrize('size', [224, 384, 480])
def test_crosscl_windows_are_a_full_6x6_lattice(size):
    window, stride = 48 * size / 224., 32 * size / 224.  # crosscl/datasets.py:28
    boxes = sliding_windows(size, window, stride, 6)
    assert boxes.shape == (36, 4)
    # Row-major lattice: box (i, j) starts at (j * stride, i * stride), bit for bit.
    for i in range(6):
        for j in range(6):
            assert boxes[i * 6 + j].tolist() == [j * stride, i * stride,
                                                 j * stride + window, i * stride + window]


def test_resim_p3_windows_and_border_rule():
    assert sliding_windows(224, 32, 24, 8).shape == (64, 4)
    # A window whose right edge reaches the border is dropped (the reference's `>=`).
    boxes = sliding_windows(100, 50, 50, 2)
    assert boxes.tolist() == [[0, 0, 50, 50]]


def _brute_force_map(point, crop_q, crop_k, size):
    """Follow one point through the image operations, one at a time: query
    view -> source image (undo the resize, then the crop) -> key view. The
    shared flip is applied to the source image before both crops, so it is
    not part of the mapping; test_pipeline checks it on real pixels."""
    u, v = point
    x = crop_q[0] + u * (crop_q[2] - crop_q[0]) / size
    y = crop_q[1] + v * (crop_q[3] - crop_q[1]) / size
    return ((x - crop_k[0]) * size / (crop_k[2] - crop_k[0]),
            (y - crop_k[1]) * size / (crop_k[3] - crop_k[1]))


def _random_crop(rng, width, height):
    w = rng.randint(1, width)
    h = rng.randint(1, height)
    left = rng.randint(0, width - w)
    top = rng.randint(0, height - h)
    return np.array([left, top, left + w, top + h], dtype=np.float64)


def test_mapping_matches_brute_force_point_mapping():
    rng = random.Random(0)
    for trial in range(200):
        width, height = rng.randint(50, 800), rng.randint(50, 800)
        size = rng.choice([64, 224, 384, 480])
        crop_q, crop_k = _random_crop(rng, width, height), _random_crop(rng, width, height)
        windows = sliding_windows(size, 48 * size / 224, 32 * size / 224)
        mapped = map_boxes_between_crops(windows, crop_q, crop_k, size)
        for box, out in zip(windows, mapped):
            for corner, expect_idx in (((box[0], box[1]), (0, 1)), ((box[2], box[3]), (2, 3))):
                ex, ey = _brute_force_map(corner, crop_q, crop_k, size)
                assert out[expect_idx[0]] == pytest.approx(ex, rel=1e-9, abs=1e-9)
                assert out[expect_idx[1]] == pytest.approx(ey, rel=1e-9, abs=1e-9)


def test_same_crop_maps_to_itself_and_validity():
    size = 224
    windows = sliding_windows(size, 48, 32)
    crop = np.array([10, 20, 110, 220])
    np.testing.assert_allclose(map_boxes_between_crops(windows, crop, crop, size), windows)
    assert boxes_inside_view(windows, size).all()
    # Key crop = the right half of the query crop: windows on the left are invalid.
    mapped = map_boxes_between_crops(windows, np.array([0, 0, 200, 200]),
                                     np.array([100, 0, 200, 200]), size)
    valid = boxes_inside_view(mapped, size)
    np.testing.assert_array_equal(valid, (mapped[:, 0] >= 0) & (mapped[:, 2] < size)
                                  & (mapped[:, 1] >= 0) & (mapped[:, 3] < size))
    assert 0 < valid.sum() < len(windows)
    assert boxes_inside_view(np.array([[0, 0, 224, 10]]), 224).tolist() == [False]


# --- Which windows count, decided as the reference decides it -----------------
# The expected side is the reference's dataset code transcribed one scalar at
# a time in its order of floating-point operations (tests/crosscl_reference.py).

def _torchvision_crop(rng, width, height, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3)):
    """RandomResizedCrop.get_params's draw, as the reference crops; (l, t, r, b)."""
    area = width * height
    for _ in range(10):
        target = rng.uniform(*scale) * area
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        w, h = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top, left = rng.randint(0, height - h), rng.randint(0, width - w)
            return (left, top, left + w, top + h)
    return (0, 0, width, height)


def _border_crop_pair(rng):
    """A query crop whose sides are multiples of 14 px, so every window edge
    falls on a whole image pixel in exact arithmetic (window j spans
    ``[w * j / 7, w * (2j + 3) / 14]`` of the crop at any view size), and a
    key crop whose edges sit on such window edges: those windows touch the key
    view's border exactly, where only the order of operations decides."""
    w_q, h_q = 14 * rng.randint(3, 40), 14 * rng.randint(3, 40)
    l_q, t_q = rng.randint(0, 300), rng.randint(0, 300)

    def key_edges(origin, extent):
        near = [origin + extent * j // 7 for j in range(6)] + [origin - rng.randint(1, 50)]
        far = [origin + extent * (2 * j + 3) // 14 for j in range(6)] + \
            [origin + extent + rng.randint(0, 50)]
        while True:
            lo, hi = rng.choice(near), rng.choice(far)
            if hi > lo:
                return lo, hi

    (l_k, r_k), (t_k, b_k) = key_edges(l_q, w_q), key_edges(t_q, h_q)
    return (l_q, t_q, l_q + w_q, t_q + h_q), (l_k, t_k, r_k, b_k)


def _windows_exactly_on_border(loc_q, loc_k):
    """How many of the 36 windows have an edge exactly on the key view's
    border in exact arithmetic, for a query crop with sides that are multiples
    of 14 px (window j spans ``[w * j / 7, w * (2j + 3) / 14]`` of it)."""
    (l_q, t_q, r_q, b_q), (l_k, t_k, r_k, b_k) = loc_q, loc_k
    w, h = r_q - l_q, b_q - t_q
    assert w % 14 == 0 and h % 14 == 0
    col = [l_q + w * j // 7 == l_k or l_q + w * (2 * j + 3) // 14 == r_k for j in range(6)]
    row = [t_q + h * i // 7 == t_k or t_q + h * (2 * i + 3) // 14 == b_k for i in range(6)]
    return sum(c or r for r in row for c in col)


@pytest.mark.parametrize('size', [224, 384, 480])
def test_valid_windows_are_decided_as_the_reference_decides(size):
    """The transform's windows, key boxes and validity equal the reference's
    own arithmetic bit for bit, on random crop pairs and on crop pairs built
    to put windows exactly on the key view's border, where a different order
    of operations flips decisions (the previous `48 * (size / 224)` and
    `x * (w / size) + l` differed on 155-344 of 2000 such pairs)."""
    from crosscl_mm.datasets.transforms.regions import SlidingWindowRegions

    rng = random.Random(size)
    transform = SlidingWindowRegions()  # CrossCL's windows on P4 and P3
    windows = reference_windows(size)
    pairs = [(_torchvision_crop(rng, w, h), _torchvision_crop(rng, w, h))
             for w, h in ((rng.randint(200, 800), rng.randint(200, 800)) for _ in range(300))]
    pairs += [_border_crop_pair(rng) for _ in range(300)]
    query_boxes = np.array(windows, dtype=np.float32).tolist()
    for loc_q, loc_k in pairs:
        mapped = [reference_anchor_mapping(size, a, loc_q, loc_k) for a in windows]
        key_boxes = np.array([box for box, _ in mapped], dtype=np.float32).tolist()
        out = transform(dict(view_size=size, crop_boxes=np.array([loc_q, loc_k], dtype=np.float64)))
        for level in ('p4', 'p3'):
            regions = out[f'regions_{level}']
            assert regions['valid'].tolist() == [ok for _, ok in mapped], (size, loc_q, loc_k)
            assert regions['query_boxes'].tolist() == query_boxes
            assert regions['key_boxes'].tolist() == key_boxes
        # The float64 mapping itself, bit for bit.
        ours = map_boxes_between_crops(np.array(windows), np.array(loc_q, dtype=float),
                                       np.array(loc_k, dtype=float), size)
        assert ours.tolist() == [list(box) for box, _ in mapped]
    # The border cases are really exercised: over a third of the windows of
    # the built pairs touch the key view's border in exact arithmetic.
    assert sum(_windows_exactly_on_border(*pair) for pair in pairs[300:]) > 300 * 36 / 3
