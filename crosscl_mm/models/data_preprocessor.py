from typing import Optional, Sequence

import torch
from mmengine.model import BaseDataPreprocessor

from crosscl_mm.registry import MODELS
from .color_augment import DeviceColorAugment


@MODELS.register_module()
class RegionPairDataPreprocessor(BaseDataPreprocessor):
    """Stack, move and normalise the two views of each image.

    Accepts a batch from ``pseudo_collate`` (``inputs`` is ``[queries,
    keys]``, two lists of uint8 ``(3, H, W)`` tensors) or from
    ``default_collate`` (``inputs`` is ``[Q, K]``, each ``(N, 3, H, W)``),
    and returns ``inputs=[Q, K]`` as float, normalised by ``mean``/``std``.
    Any number of views works the same way, and so do stacks of patches
    (``(P, 3, h, w)`` per sample, ``(N, P, 3, h, w)`` stacked: DetCo's patch sets).
    The data samples, with their region boxes, are moved to the device.

    Args:
        mean, std: per-channel statistics in the channel order of the images
            (our pipeline decodes to RGB; defaults are ImageNet's RGB stats).
        bgr_to_rgb: reverse the channels first, for pipelines that load BGR.
        non_blocking: copy to the device asynchronously. On by default (mmengine's
            default is off): a blocking copy waits for the GPU to drain, once per
            tensor of the batch, and the asynchronous one is safe from pageable
            and pinned memory alike.
        color_augments: ``ViewColorAugment`` config dicts (the ``_gpu-aug``
            configs move them here from the pipeline) run in training on the
            device, in order, each on its ``views``, before the normalisation:
            :class:`~crosscl_mm.models.color_augment.DeviceColorAugment`.
    """

    def __init__(self,
                 mean: Sequence[float] = (123.675, 116.28, 103.53),
                 std: Sequence[float] = (58.395, 57.12, 57.375),
                 bgr_to_rgb: bool = False,
                 non_blocking: Optional[bool] = True,
                 color_augments: Sequence[dict] = ()) -> None:
        super().__init__(non_blocking)
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1), False)
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(-1, 1, 1), False)
        self.bgr_to_rgb = bgr_to_rgb
        self.color_augments = [DeviceColorAugment.from_config(cfg) for cfg in color_augments]

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        views = [torch.stack(v) if isinstance(v, (list, tuple)) else v for v in data['inputs']]
        if self.bgr_to_rgb:  # the channel axis, also of (N, P, 3, H, W) patch stacks
            views = [view.flip(-3) for view in views]
        if training:
            for augment in self.color_augments:
                for i in range(len(views)) if augment.views is None else augment.views:
                    if i >= len(views):
                        raise IndexError(f'color_augments: view {i} of {augment} but the batch '
                                         f'has {len(views)} views')
                    views[i] = augment(views[i])
        normalised = [(view.float() - self.mean) / self.std for view in views]
        return dict(inputs=normalised, data_samples=data.get('data_samples'))
