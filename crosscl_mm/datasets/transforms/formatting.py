from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import BaseDataElement, InstanceData

from crosscl_mm.registry import TRANSFORMS


@TRANSFORMS.register_module()
class PackRegionPairInputs(BaseTransform):
    """Pack the views and their regions for the model.

    ``inputs`` becomes the list of views (CrossCL: ``[query, key]``), uint8
    ``(3, H, W)`` tensors, and a stack of patches ``(P, H, W, 3)`` becomes
    ``(P, 3, H, W)`` (DetCo); ``data_samples`` is a :class:`BaseDataElement`
    with one :class:`InstanceData` per ``regions_*`` entry (CrossCL:
    ``regions_p4`` with ``query_boxes``, ``key_boxes``, ``valid``; SoCo:
    ``regions_1_2`` with ``boxes``, ``ids``, ``levels``) and ``meta_keys``
    as metainfo.
    """

    def __init__(self, meta_keys: Sequence[str] = ('img_path', 'crop_boxes', 'flip', 'view_size')):
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        views = [torch.from_numpy(np.ascontiguousarray(np.moveaxis(v, -1, -3))) for v in results['img']]
        sample = BaseDataElement(metainfo={k: results[k] for k in self.meta_keys if k in results})
        for key, regions in results.items():
            if key.startswith('regions_'):
                sample.set_field(InstanceData(**{name: torch.from_numpy(np.asarray(value))
                                                 for name, value in regions.items()}), key)
        return dict(inputs=views, data_samples=sample)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(meta_keys={self.meta_keys})'
