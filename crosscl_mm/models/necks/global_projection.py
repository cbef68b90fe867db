from typing import Optional

import torch
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor, nn

from crosscl_mm.registry import MODELS


@MODELS.register_module()
class GlobalProjectionNeck(BaseModule):
    """MoCo v2's projection: global average pool, then Linear-ReLU-Linear
    (Linear-norm-ReLU-Linear with a ``norm_cfg``).

    Args:
        in_channels: channels of the backbone's last stage (2048 for ResNet-50).
        hid_channels: hidden width of the MLP.
        out_channels: dimension of the embedding that enters the queue.
        norm_cfg: optional norm after the hidden Linear, e.g.
            ``dict(type='BN1d')``; MoCo v2 has none.
        init_cfg: MMEngine init config. ``None`` keeps PyTorch's default
            ``nn.Linear`` init, as MoCo v2 and CrossCL do.
    """

    def __init__(self, in_channels: int = 2048, hid_channels: int = 2048,
                 out_channels: int = 128, norm_cfg: Optional[dict] = None,
                 init_cfg=None) -> None:
        super().__init__(init_cfg)
        hidden = [nn.Linear(in_channels, hid_channels)]
        if norm_cfg is not None:
            hidden.append(build_norm_layer(norm_cfg, hid_channels)[1])
        self.mlp = nn.Sequential(*hidden, nn.ReLU(inplace=True),
                                 nn.Linear(hid_channels, out_channels))

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, H, W)`` -> ``(N, out_channels)`` (not normalised)."""
        return self.mlp(torch.flatten(x.mean(dim=(2, 3)), 1))
