"""Sliding windows and box mapping between crops, against brute force."""
import random

import numpy as np
import pytest

from crosscl_mm.datasets.geometry import boxes_inside_view, map_boxes_between_crops, sliding_windows


@pytest.mark.parametrize('size', [224, 384, 480])
def test_crosscl_windows_are_a_full_6x6_lattice(size):
    f = size / 224
    boxes = sliding_windows(size, 48 * f, 32 * f, 6)
    assert boxes.shape == (36, 4)
    # Row-major lattice: box (i, j) starts at (j * stride, i * stride).
    for i in range(6):
        for j in range(6):
            x0, y0, x1, y1 = boxes[i * 6 + j]
            assert (x0, y0) == pytest.approx((j * 32 * f, i * 32 * f))
            assert (x1 - x0, y1 - y0) == pytest.approx((48 * f, 48 * f))


def test_resim_p3_windows_and_border_rule():
    assert sliding_windows(224, 32, 24, 8).shape == (64, 4)
    # A window whose right edge reaches the border is dropped (the reference's `>=`).
    boxes = sliding_windows(100, 50, 50, 2)
    assert boxes.tolist() == [[0, 0, 50, 50]]


def _brute_force_map(point, crop_q, crop_k, size, flip, width):
    """Follow one point through the actual image operations, one at a time:
    query view -> flipped image -> original image -> flipped image -> key view."""
    u, v = point
    # query view pixel -> flipped-image pixel (resize is a scale, crop an offset)
    xf = crop_q[0] + u * (crop_q[2] - crop_q[0]) / size
    yf = crop_q[1] + v * (crop_q[3] - crop_q[1]) / size
    # flipped image -> original image
    x = width - xf if flip else xf
    y = yf
    # original -> flipped again (both views share the flip)
    xf = width - x if flip else x
    return ((xf - crop_k[0]) * size / (crop_k[2] - crop_k[0]),
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
        flip = rng.random() < 0.5
        crop_q, crop_k = _random_crop(rng, width, height), _random_crop(rng, width, height)
        windows = sliding_windows(size, 48 * size / 224, 32 * size / 224)
        mapped = map_boxes_between_crops(windows, crop_q, crop_k, size)
        for box, out in zip(windows, mapped):
            for corner, expect_idx in (((box[0], box[1]), (0, 1)), ((box[2], box[3]), (2, 3))):
                ex, ey = _brute_force_map(corner, crop_q, crop_k, size, flip, width)
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
