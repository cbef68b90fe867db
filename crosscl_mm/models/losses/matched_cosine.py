import torch
from torch import Tensor, nn

from crosscl_mm.registry import MODELS


@MODELS.register_module()
class MatchedCosineLoss(nn.Module):
    """BYOL's regression loss over matching pairs of boxes, per image.

    For image ``n`` with predictions ``q[n, a]``, targets ``k[n, b]`` (both
    L2-normalised) and a 0/1 match matrix ``C[n, a, b]``::

        loss = -2 * mean_n( sum_ab C[n,a,b] <q[n,a], k[n,b]> / (sum_ab C[n,a,b] + eps) )

    which is SoCo's ``regression_loss_bboxs_aware`` (official
    ``contrast/models/SoCo_FPN.py:119-128``): BYOL's ``2 - 2 cos`` without
    the constant, so a perfect match gives -2. An image with no match adds 0
    but still counts in the mean over images.

    Under mixed precision the loss is computed in float32 whatever the
    inputs' dtype (autocast off): the sums over matches are where low
    precision would cost most, and the ``N x A x B`` similarities are cheap.
    The official code runs this ``bmm`` in float16 under apex O1 (``bmm``
    is on apex's float16 list for CUDA >= 9.1,
    ``apex/amp/lists/torch_overrides.py:71-83`` @ e13873d); float32 here.

    Args:
        eps: added to each image's match count.
    """

    def __init__(self, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, query: Tensor, target: Tensor, match: Tensor) -> Tensor:
        """
        Args:
            query: ``(N, A, C)`` normalised predictions.
            target: ``(N, B, C)`` normalised targets.
            match: ``(N, A, B)``, 1 where ``query[n, a]`` and ``target[n, b]``
                show the same object.

        Returns:
            Tensor: the scalar loss.
        """
        with torch.autocast(device_type=query.device.type, enabled=False):
            query, target, match = query.float(), target.float(), match.float()
            similarity = torch.bmm(query, target.transpose(1, 2))
            per_image = (similarity * match).sum((1, 2)) / (match.sum((1, 2)) + self.eps)
            return -2 * per_image.mean()
