from collections import OrderedDict

from mmcv.cnn import build_norm_layer
from mmdet.models.backbones import ResNet
from mmdet.models.layers import ResLayer
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


@MODELS.register_module()
class Res5BoxHead(BaseModule):
    """The res5 stage of a ResNet used as the box head of a C4 detector, with
    the global average pooling after it: ``(R, C4, S, S) -> (R, C5)``.

    SoCo-C4 pretrains it on RoIs aligned from C4 (official
    ``contrast/resnet.py:224-264``: ``layer4`` on the 14x14 RoIs, then
    ``AvgPool2d(7)``); a C4 detector runs the same stage on its RoIs (mmdet's
    ``roi_head.shared_head`` :class:`~mmdet.models.roi_heads.ResLayer`,
    detectron2's ``roi_heads.res5``). The stage is mmdet's ``ResLayer`` and
    is named ``layer4``, so its state-dict names are those of mmdet's shared
    head (``layer4.0.conv1.weight``, ...), and the converter hands it over
    one to one.

    Unlike mmdet's shared head, the width follows ``base_channels`` (64 for
    ResNet-50; narrower in tests) and the init is the backbone's: Kaiming
    normal (fan_out) convs, BN 1/0, and with ``zero_init_residual`` every
    block's last BN weight 0 (official ``resnet.py:169-186`` zeroes every
    ``bn3`` including res5's).

    Args:
        depth: ResNet depth (50, 101, ...; 18/34 for BasicBlock).
        base_channels: width of the stem; res5's blocks are
            ``base_channels * 8`` wide.
        stride: stride of the first block (2: 14x14 RoIs -> 7x7).
        style: 'pytorch' (stride on the 3x3 conv, official) or 'caffe'.
        norm_cfg: norm of the stage.
        zero_init_residual: zero the last BN of every block at init.
    """

    def __init__(self, depth: int = 50, base_channels: int = 64, stride: int = 2,
                 style: str = 'pytorch', norm_cfg: dict = dict(type='BN', requires_grad=True),
                 zero_init_residual: bool = True,
                 init_cfg=(dict(type='Kaiming', layer='Conv2d'),
                           dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm']))
                 ) -> None:
        super().__init__(list(init_cfg) if init_cfg is not None else None)
        block, stage_blocks = ResNet.arch_settings[depth]
        planes = base_channels * 8
        self.block = block
        self.zero_init_residual = zero_init_residual
        self.layer4 = ResLayer(block, base_channels * 4 * block.expansion, planes,
                               stage_blocks[3], stride=stride, style=style, norm_cfg=norm_cfg)
        self.out_channels = planes * block.expansion

    def init_weights(self) -> None:
        super().init_weights()
        if self.zero_init_residual:
            for block in self.layer4:
                last = block.norm3 if hasattr(block, 'norm3') else block.norm2
                nn.init.constant_(last.weight, 0)

    def forward(self, x: Tensor) -> Tensor:
        """``(R, C, S, S)`` RoIs -> ``(R, out_channels)``."""
        return self.layer4(x).mean((2, 3))
