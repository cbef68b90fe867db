from collections import OrderedDict

from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor, nn

from crosscl_mm.registry import MODELS


@MODELS.register_module()
class ConvFCBoxHead(BaseModule):
    """The shared part of a detector's box head: ``num_convs`` x [3x3 conv
    (no bias), norm, ReLU], flatten, one fc, ReLU. With 4 convs and one fc
    of 1024 it is detectron2's ``FastRCNNConvFCHead`` and the trunk of
    mmdet's ``Shared4Conv1FCBBoxHead``, as SoCo pretrains it (official
    ``contrast/models/fast_rcnn_conv_fc_head.py:12-56``).

    Names map one to one onto mmdet's head (``convs.i.conv/bn`` ->
    ``shared_convs.i.conv/bn``, ``fc`` -> ``shared_fcs.0``), so the
    converter can hand the pretrained head to a detector.

    Args:
        in_channels: channels of the pooled features (the FPN's).
        conv_channels: channels of every conv.
        num_convs: number of convs.
        roi_size: side of the pooled features.
        fc_channels: output of the fc.
        norm_cfg: norm after each conv.
        init_cfg: MMEngine init config. ``None`` keeps PyTorch's default
            conv and linear init, as the official code does.
    """

    def __init__(self, in_channels: int = 256, conv_channels: int = 256, num_convs: int = 4,
                 roi_size: int = 7, fc_channels: int = 1024,
                 norm_cfg: dict = dict(type='BN'), init_cfg=None) -> None:
        super().__init__(init_cfg)
        self.convs = nn.ModuleList()
        for i in range(num_convs):
            self.convs.append(nn.Sequential(OrderedDict(
                conv=nn.Conv2d(in_channels if i == 0 else conv_channels, conv_channels, 3,
                               padding=1, bias=False),
                bn=build_norm_layer(norm_cfg, conv_channels)[1],
                relu=nn.ReLU(inplace=True))))
        last = conv_channels if num_convs else in_channels
        self.fc = nn.Linear(last * roi_size * roi_size, fc_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        """``(R, C, roi_size, roi_size)`` -> ``(R, fc_channels)``."""
        for conv in self.convs:
            x = conv(x)
        return self.relu(self.fc(x.flatten(1)))


@MODELS.register_module()
class ProjectionMLP(BaseModule):
    """BYOL's projector / predictor: Linear, BatchNorm1d, ReLU, Linear
    (official ``contrast/models/mlps.py:12-31``; SoCo: 1024-4096-256 and
    256-4096-256).

    Args:
        in_channels, hid_channels, out_channels: widths.
        norm_cfg: norm of the hidden layer.
        init_cfg: ``None`` keeps PyTorch's default init, as official.
    """

    def __init__(self, in_channels: int = 1024, hid_channels: int = 4096,
                 out_channels: int = 256, norm_cfg: dict = dict(type='BN1d'),
                 init_cfg=None) -> None:
        super().__init__(init_cfg)
        self.linear1 = nn.Linear(in_channels, hid_channels)
        self.bn1 = build_norm_layer(norm_cfg, hid_channels)[1]
        self.relu = nn.ReLU(inplace=True)
        self.linear2 = nn.Linear(hid_channels, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear2(self.relu(self.bn1(self.linear1(x))))
