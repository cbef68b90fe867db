from typing import Dict, Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from crosscl_mm.registry import TRANSFORMS
from ..geometry import boxes_inside_view, map_boxes_between_crops, sliding_windows


@TRANSFORMS.register_module()
class SlidingWindowRegions(BaseTransform):
    """Region pairs for the regional contrast: sliding windows on the query
    view and the same image regions seen in the key view.

    Windows are given at ``base_size`` and scaled with the view (window 48 at
    stride 32 on a 224 view is 82.3 at 54.9 on 384), so every size keeps the
    same 6x6 lattice. Each query window is mapped through the original image
    into the key view; those that leave the key view are marked invalid.
    Scaling, mapping and the border test are evaluated in the reference's
    order of floating-point operations (see :mod:`crosscl_mm.datasets.geometry`), so the same
    windows are valid as in the reference on every crop pair.

    For each level ``L`` in ``windows`` adds ``regions_L`` = dict of
    ``query_boxes`` and ``key_boxes`` (``(K, 4)`` float32, pixels of each
    view) and ``valid`` (``(K,)`` bool).

    Args:
        windows: per level, ``dict(window=..., stride=..., grid=...)`` at
            ``base_size``. CrossCL uses 48/32/6 on both P4 and P3; ReSim uses
            32/24/8 on P3.
        base_size: view size the window sizes refer to.
    """

    def __init__(self,
                 windows: Dict[str, dict] = dict(p4=dict(window=48, stride=32, grid=6),
                                                 p3=dict(window=48, stride=32, grid=6)),
                 base_size: int = 224) -> None:
        self.windows = {level: dict(spec) for level, spec in windows.items()}
        self.base_size = base_size

    def transform(self, results: dict) -> dict:
        size = results['view_size']
        query_crop, key_crop = results['crop_boxes']
        for level, spec in self.windows.items():
            # `48 * size / 224.` as the reference (crosscl/datasets.py:28), not
            # `48 * (size / 224)`: the two differ in the last bit at some sizes.
            window = spec['window'] * size / self.base_size
            stride = spec['stride'] * size / self.base_size
            query = sliding_windows(size, window, stride, spec.get('grid', 6))
            key = map_boxes_between_crops(query, query_crop, key_crop, size)
            results[f'regions_{level}'] = dict(
                query_boxes=query.astype(np.float32), key_boxes=key.astype(np.float32),
                valid=boxes_inside_view(key, size))
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(windows={self.windows}, base_size={self.base_size})'
