from typing import Optional, Sequence, Tuple

import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor, nn

from crosscl_mm.registry import MODELS


@MODELS.register_module()
class TopDownFPN(BaseModule):
    """The top-down path of an FPN, as CrossCL pretrains it.

    Every input level gets a 1x1 lateral conv; going down from the top, the
    running feature map is upsampled 2x (nearest) and added to the next
    lateral; every level except the top then gets a 3x3 output conv. With
    C3-C5 of a ResNet this gives (P3, P4): the top level has no output, as in
    CrossCL/ReSim, and there is no extra P5/P6.

    Module names follow :class:`mmdet.models.necks.FPN`, so the weights map
    one to one onto an mmdet R50-FPN whose ``start_level`` is 0:
    ``lateral_convs.i -> lateral_convs.(i + 1)`` and
    ``fpn_convs.i -> fpn_convs.(i + 1)`` (mmdet's level 0 is C2).

    Args:
        in_channels: channels of each input level, lowest first.
        out_channels: channels of every output.
        norm_cfg: optional norm after each conv (CrossCL's ``--fpn-bn``);
            convs then have no bias.
        init_cfg: defaults to detectron2's init of FPN convs
            (``c2_xavier_fill``: kaiming-uniform with ``a=1``, bias 0).
    """

    def __init__(self,
                 in_channels: Sequence[int] = (512, 1024, 2048),
                 out_channels: int = 256,
                 norm_cfg: Optional[dict] = None,
                 init_cfg=dict(type='Caffe2Xavier', layer='Conv2d')) -> None:
        super().__init__(init_cfg)
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.lateral_convs = nn.ModuleList(
            ConvModule(c, out_channels, 1, norm_cfg=norm_cfg, act_cfg=None)
            for c in self.in_channels)
        self.fpn_convs = nn.ModuleList(
            ConvModule(out_channels, out_channels, 3, padding=1, norm_cfg=norm_cfg, act_cfg=None)
            for _ in self.in_channels[:-1])

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """Backbone maps, lowest level first -> outputs of all but the top level."""
        if len(inputs) != len(self.in_channels):
            raise ValueError(f'expected {len(self.in_channels)} input levels, got {len(inputs)}')
        merged = self.lateral_convs[-1](inputs[-1])
        outs = []
        for level in range(len(inputs) - 2, -1, -1):
            lateral = self.lateral_convs[level](inputs[level])
            # size= instead of scale_factor=2 also handles odd map sizes.
            merged = lateral + F.interpolate(merged, size=lateral.shape[-2:], mode='nearest')
            outs.append(self.fpn_convs[level](merged))
        return tuple(reversed(outs))
