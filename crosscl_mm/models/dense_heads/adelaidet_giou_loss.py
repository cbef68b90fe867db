import torch
from mmdet.models.losses.utils import weighted_loss
from torch import Tensor, nn

from crosscl_mm.registry import MODELS


@weighted_loss
def adelaidet_giou_loss(pred: Tensor, target: Tensor) -> Tensor:
    """``1 - GIoU`` per box pair as AdelaiDet's ``compute_ious``
    (``adet/utils/comm.py``) computes it: IoU smoothed by one,
    ``(intersection + 1) / (union + 1)``, and the enclosing-box term without
    an epsilon. AdelaiDet takes the (left, top, right, bottom) distances of
    prediction and target from one location; ``pred`` and ``target`` here are
    boxes ``(x1, y1, x2, y2)`` decoded from one point per pair (as mmdet's
    ``FCOSHead`` passes them), for which widths, intersection and enclosing
    box are the same sums of distances (the point cancels)."""
    w_inter = torch.min(pred[:, 2], target[:, 2]) - torch.max(pred[:, 0], target[:, 0])
    h_inter = torch.min(pred[:, 3], target[:, 3]) - torch.max(pred[:, 1], target[:, 1])
    w_inter, h_inter = w_inter.clamp(min=0), h_inter.clamp(min=0)
    w_enclose = torch.max(pred[:, 2], target[:, 2]) - torch.min(pred[:, 0], target[:, 0])
    h_enclose = torch.max(pred[:, 3], target[:, 3]) - torch.min(pred[:, 1], target[:, 1])
    area_pred = (pred[:, 2] - pred[:, 0]) * (pred[:, 3] - pred[:, 1])
    area_target = (target[:, 2] - target[:, 0]) * (target[:, 3] - target[:, 1])
    inter = w_inter * h_inter
    union = area_pred + area_target - inter
    enclose = w_enclose * h_enclose
    ious = (inter + 1.0) / (union + 1.0)
    gious = ious - (enclose - union) / enclose
    return 1 - gious


@MODELS.register_module()
class AdelaiDetGIoULoss(nn.Module):
    """AdelaiDet's FCOS box loss, ``IOULoss('giou')`` (``adet/layers/iou_loss.py``):
    ``sum(weight * (1 - GIoU))``, divided by ``avg_factor`` (FCOS passes the
    centerness targets as weight and their sum as avg_factor, as AdelaiDet's
    ``fcos_outputs.py`` does). It differs from mmdet's ``GIoULoss`` by the IoU
    smoothing (+1 over intersection and union) that AdelaiDet applies to
    distances normalised by the level's stride, where one unit is a stride
    squared, not a pixel.

    Args:
        loss_weight (float): multiplies the loss.
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, pred: Tensor, target: Tensor, weight=None, avg_factor=None,
                reduction_override=None, **kwargs) -> Tensor:
        reduction = reduction_override or 'mean'
        return self.loss_weight * adelaidet_giou_loss(
            pred, target, weight, reduction=reduction, avg_factor=avg_factor)
