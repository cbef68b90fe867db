from mmcv.cnn import build_norm_layer
from mmdet.models.backbones import ResNet
from mmdet.models.roi_heads.shared_heads import ResLayer
from torch import Tensor

from crosscl_mm.registry import MODELS


@MODELS.register_module()
class ResLayerExtraNorm(ResLayer):
    """The res5 RoI head of a C4 detector with one more norm layer after
    its last block: ``norm(layer4(x))``.

    detectron2's ``Res5ROIHeadsExtraNorm`` (defined in the reference's
    ``detection/train_net.py``, after MoCo's: "As described in the MOCO
    paper, there is an extra BN layer following the res5 stage"), used by
    the VOC Faster R-CNN C4 protocol. The extra layer has the res5 output's
    2048 channels, the shared head's ``norm_cfg`` (SyncBN in the protocol)
    and PyTorch's default init (weight 1, bias 0); it is not pretrained.

    The same layer as mmselfsup's and mmpretrain's ``ResLayerExtraNorm``,
    which register it in mmdet's registry only when their model package is
    imported (and which one exists depends on the environment, STACK.md
    item 3); configs name ours ``crosscl_mm.ResLayerExtraNorm`` and build
    the same in both environments. State-dict names are mmdet's ``ResLayer``
    ones plus ``norm.*``, so ``Pretrained`` with ``prefix='backbone.'``
    loads layer4 from a converted checkpoint.

    Args:
        **kwargs: :class:`mmdet.models.roi_heads.shared_heads.ResLayer`'s.
    """

    def __init__(self, depth: int, stage: int = 3, **kwargs) -> None:
        super().__init__(depth, stage=stage, **kwargs)
        out_channels = ResNet.arch_settings[depth][0].expansion * 64 * 2**stage
        self.add_module('norm', build_norm_layer(self.norm_cfg, out_channels)[1])

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(super().forward(x))
