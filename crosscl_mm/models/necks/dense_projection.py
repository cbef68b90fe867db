from mmengine.model import BaseModule
from torch import Tensor, nn

from crosscl_mm.registry import MODELS


@MODELS.register_module()
class DenseProjectionNeck(BaseModule):
    """DenseCL's dense head: a 1x1 conv, ReLU, a 1x1 conv, applied to every
    cell of the backbone's last map (CoinCheung/DenseCL ``densecl/resnet.py:
    159-163``; the official DenseCL's ``DenseCLNeck`` without its grid pooling).

    Args:
        in_channels: channels of the backbone's last stage (2048 for ResNet-50).
        hid_channels: width of the hidden 1x1 conv.
        out_channels: dimension of each cell's embedding.
        init_cfg: MMEngine init config; ``None`` keeps PyTorch's conv init.
    """

    def __init__(self, in_channels: int = 2048, hid_channels: int = 2048,
                 out_channels: int = 128, init_cfg=None) -> None:
        super().__init__(init_cfg)
        self.convs = nn.Sequential(nn.Conv2d(in_channels, hid_channels, 1), nn.ReLU(inplace=True),
                                   nn.Conv2d(hid_channels, out_channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, H, W)`` -> ``(N, out_channels, H, W)`` (not normalised)."""
        return self.convs(x)
