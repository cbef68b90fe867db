"""detectron2 v0.3's RetinaNet where mmdet's FPN and RetinaHead differ.

``build_retinanet_resnet_fpn_backbone`` (detectron2/modeling/backbone/fpn.py)
puts a ``LastLevelP6P7`` on the FPN: P6 = conv3x3/2(C5), P7 = conv3x3/2(relu(P6)),
two plain convs with bias and no norm even when ``FPN.NORM`` is set, while
mmdet's ``FPN`` builds its extra convs with the neck's ``norm_cfg``.
``RetinaNet.losses`` (detectron2/modeling/meta_arch/retinanet.py, v0.2-v0.5)
divides the summed focal and box losses by a moving average of the number of
positive anchors (start 100, momentum 0.9, per process), where mmdet divides by
the batch's own count.
"""
from mmcv.cnn import ConvModule
from mmdet.models.dense_heads import RetinaHead
from mmdet.models.necks import FPN

from crosscl_mm.registry import MODELS


@MODELS.register_module()
class Detectron2RetinaFPN(FPN):
    """mmdet's ``FPN`` whose extra levels are detectron2's ``LastLevelP6P7``.

    The lateral and output convs keep ``norm_cfg``; the extra convs (P6 from
    ``add_extra_convs``' source, P7 from relu(P6)) have a bias and neither
    norm nor activation. Use with ``add_extra_convs='on_input'`` (C5, as
    detectron2 v0.3) and ``relu_before_extra_convs=True``.

    Args:
        **kwargs: :class:`mmdet.models.necks.FPN`'s.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        num_levels = self.backbone_end_level - self.start_level
        for i in range(num_levels, len(self.fpn_convs)):
            old = self.fpn_convs[i].conv
            self.fpn_convs[i] = ConvModule(
                old.in_channels, old.out_channels, 3, stride=2, padding=1,
                conv_cfg=kwargs.get('conv_cfg'), norm_cfg=None, act_cfg=None, inplace=False)


@MODELS.register_module()
class Detectron2RetinaHead(RetinaHead):
    """mmdet's ``RetinaHead`` with detectron2's loss normaliser.

    Each training step, before the losses are divided, the normaliser becomes
    ``momentum * normaliser + (1 - momentum) * max(num_pos, 1)``, ``num_pos``
    being the positive anchors of this process's batch; the losses are then
    sums divided by it (detectron2 ``RetinaNet.losses``). Like detectron2's
    ``self.loss_normalizer`` it is a plain attribute, not saved in
    checkpoints.

    Args:
        loss_normalizer (float): initial value (detectron2: 100).
        loss_normalizer_momentum (float): detectron2: 0.9.
        **kwargs: :class:`mmdet.models.dense_heads.RetinaHead`'s.
    """

    def __init__(self, loss_normalizer: float = 100.0, loss_normalizer_momentum: float = 0.9,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.loss_normalizer = float(loss_normalizer)
        self.loss_normalizer_momentum = float(loss_normalizer_momentum)

    def get_targets(self, *args, **kwargs) -> tuple:
        targets = super().get_targets(*args, **kwargs)
        labels_list = targets[0]
        # Positive anchors: a class label (background is num_classes) with
        # weight; mmdet's PseudoSampler avg_factor counts the same anchors.
        num_pos = sum(int(((labels >= 0) & (labels < self.num_classes)).sum())
                      for labels in labels_list)
        m = self.loss_normalizer_momentum
        self.loss_normalizer = m * self.loss_normalizer + (1 - m) * max(num_pos, 1)
        return targets[:4] + (self.loss_normalizer, ) + targets[5:]
