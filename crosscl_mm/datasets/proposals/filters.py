"""SoCo's proposal filters (github hologerry/SoCo ``selective_search/filters.py``).

All boxes are ``(left, top, width, height)`` integer rows in the official
convention (``width = max_x - min_x``); every filter keeps the order of the
input, duplicates included. Comparisons are the official ones, in float64
(``w / h`` and ``sqrt(w h) / sqrt(W H)`` are correctly rounded in numpy as in
Python, so the boundaries fall the same way).
"""
from typing import Tuple

import numpy as np

__all__ = ['filter_min_side', 'filter_ratio', 'filter_ratio_size', 'filter_soco_proposals']

MIN_SIDE = 32


def _sides(boxes: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    return boxes[:, 2], boxes[:, 3]


def _min_side_mask(boxes: np.ndarray) -> np.ndarray:
    w, h = _sides(boxes)
    return (w >= MIN_SIDE) & (h >= MIN_SIDE)


def _ratio_mask(boxes: np.ndarray, ratio: float) -> np.ndarray:
    w, h = _sides(boxes)
    aspect = w / np.maximum(h, 1)  # h = 0 is already out by the side test
    return (1.0 / ratio <= aspect) & (aspect <= ratio)


def filter_min_side(boxes: np.ndarray) -> np.ndarray:
    """Boxes with ``w >= 32 and h >= 32`` (``filter_none``, filters.py:23-30)."""
    boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    return boxes[_min_side_mask(boxes)]


def filter_ratio(boxes: np.ndarray, ratio: float = 3) -> np.ndarray:
    """Boxes with ``w, h >= 32`` and ``1/ratio <= w/h <= ratio``
    (``filter_ratio``, filters.py:33-40)."""
    boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    return boxes[_min_side_mask(boxes) & _ratio_mask(boxes, ratio)]


def filter_ratio_size(boxes: np.ndarray, image_size: Tuple[int, int], ratio: float = 3,
                      min_ratio: float = 0.3, max_ratio: float = 0.8) -> np.ndarray:
    """Boxes with ``w, h >= 32``, ``1/ratio <= w/h <= ratio`` and
    ``min_ratio <= sqrt(w h) / sqrt(W H) <= max_ratio``
    (``filter_ratio_size``, filters.py:56-66; SoCo's strategy
    ``ratio3size0308`` gives ratio 3, 0.3 and 0.8,
    filter_ss_proposals_json.py:12, 41-45).

    Args:
        image_size: ``(W, H)`` of the image.
    """
    boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    width, height = image_size
    w, h = _sides(boxes)
    relative = np.sqrt(w * h) / np.sqrt(float(width * height))
    keep = _min_side_mask(boxes) & _ratio_mask(boxes, ratio)
    keep &= (min_ratio <= relative) & (relative <= max_ratio)
    return boxes[keep]


def filter_soco_proposals(boxes: np.ndarray, image_size: Tuple[int, int]) -> np.ndarray:
    """SoCo's proposals of one image from its selective-search boxes: the
    ``ratio3size0308post`` set it trains on.

    ``filter_ratio_size(ratio=3, 0.3, 0.8)``; if that leaves nothing,
    ``filter_ratio(3)``; if still nothing, ``filter_min_side``; else empty
    (filter_ss_proposals_json_post_no_prop.py:18-32). The dataset then uses
    the whole image as the only box (contrast/data/dataset.py:547-548).

    Args:
        boxes: ``(N, 4)`` ``(left, top, width, height)`` from
            :func:`selective_search`.
        image_size: ``(W, H)``.
    """
    for keep in (lambda b: filter_ratio_size(b, image_size, 3, 0.3, 0.8),
                 lambda b: filter_ratio(b, 3), filter_min_side):
        kept = keep(boxes)
        if len(kept):
            return kept
    return kept
