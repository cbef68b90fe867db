"""SoCo's object proposals: selective search and the official filters.

Computed offline by ``tools/misc/generate_proposals.py`` into the records of
:mod:`crosscl_mm.datasets.proposal_records`.
"""
import numpy as np

from .filters import filter_min_side, filter_ratio, filter_ratio_size, filter_soco_proposals
from .selective_search import selective_search

__all__ = ['filter_min_side', 'filter_ratio', 'filter_ratio_size', 'filter_soco_proposals',
           'selective_search', 'soco_proposals']


def soco_proposals(img: np.ndarray) -> np.ndarray:
    """SoCo's training proposals of an ``(H, W, 3)`` uint8 RGB image at full
    resolution: :func:`selective_search` with SoCo's parameters, then
    :func:`filter_soco_proposals`. ``(N, 4)`` int64 ``(left, top, width,
    height)``, possibly empty."""
    return filter_soco_proposals(selective_search(img), (img.shape[1], img.shape[0]))
