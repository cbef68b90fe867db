from mmcv.cnn import ConvModule
from mmdet.models.necks import FPN

from crosscl_mm.registry import MODELS


@MODELS.register_module()
class FPNPlainTopLevels(FPN):
    """mmdet's FPN whose extra top levels (P6, P7 of RetinaNet and FCOS) are
    plain convolutions: a bias and no norm, whatever ``norm_cfg`` the FPN's
    own lateral and output convs have.

    AdelaiDet's ``LastLevelP6P7`` (``adet/modeling/backbone/fpn.py``, also
    detectron2's) builds P6 and P7 as ``nn.Conv2d(256, 256, 3, 2, 1)`` with
    bias and without norm, ``p7 = conv(relu(p6))``, while detectron2's FPN
    normalises its lateral and output convs with ``MODEL.FPN.NORM`` (SyncBN in
    the DenseCL configs). mmdet's ``FPN`` gives its extra convs the same
    ``norm_cfg`` as the others; this class rebuilds them without it. With
    ``add_extra_convs='on_output'`` and ``relu_before_extra_convs=True`` the
    extra levels then are AdelaiDet's ``LastLevelP6P7(in_features='p5')``.

    Args:
        **kwargs: :class:`mmdet.models.necks.FPN`'s.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        first_extra = self.backbone_end_level - self.start_level
        for i in range(first_extra, len(self.fpn_convs)):
            old = self.fpn_convs[i].conv
            self.fpn_convs[i] = ConvModule(
                old.in_channels, old.out_channels, 3, stride=2, padding=1,
                conv_cfg=kwargs.get('conv_cfg'), norm_cfg=None, act_cfg=None, bias=True,
                inplace=False)
