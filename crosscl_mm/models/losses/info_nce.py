from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crosscl_mm.registry import MODELS


@MODELS.register_module()
class InfoNCELoss(nn.Module):
    """InfoNCE: cross-entropy of ``[positive | negatives] / temperature`` with
    the positive as the target class.

    For query ``q_i``, positive ``k_i`` and negatives ``n_j`` (all L2-normalised)::

        loss_i = -log( exp(q_i.k_i / T) / (exp(q_i.k_i / T) + sum_j exp(q_i.n_j / T)) )

    The loss is the mean of ``loss_i`` over the queries marked valid, which is
    ``nn.CrossEntropyLoss(ignore_index=...)`` of the reference code, except
    that with no valid query it is a zero that still carries a gradient
    (cross-entropy with every target ignored is NaN).

    Args:
        temperature: softmax temperature ``T``.
    """

    def __init__(self, temperature: float = 0.2) -> None:
        super().__init__()
        self.temperature = temperature

    def forward(self, query: Tensor, positive: Tensor, negatives: Tensor,
                valid: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """
        Args:
            query: ``(M, C)`` queries.
            positive: ``(M, C)`` the positive key of each query.
            negatives: ``(Q, C)`` negatives shared by all queries.
            valid: optional ``(M,)`` bool mask of the queries that count.

        Returns:
            tuple: the loss (scalar) and the top-1 accuracy in percent over the
            valid queries, i.e. how often the positive scores above every negative.
        """
        # float32 logits under mixed precision too: with T = 0.2 a logit near 5 would be
        # rounded to 1/32 in bfloat16, and the (M, Q) product is small beside the encoders.
        with torch.autocast(device_type=query.device.type, enabled=False):
            query, positive, negatives = query.float(), positive.float(), negatives.float()
            l_pos = (query * positive).sum(dim=1, keepdim=True)
            l_neg = query @ negatives.t()
            logits = torch.cat([l_pos, l_neg], dim=1) / self.temperature
        target = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
        per_query = F.cross_entropy(logits, target, reduction='none')
        with torch.no_grad():
            correct = (logits.argmax(dim=1) == 0).float()
        if valid is None:
            return per_query.mean(), correct.mean() * 100
        weight = valid.to(per_query.dtype)
        count = weight.sum().clamp(min=1)  # tensor ops only: no host sync
        return (per_query * weight).sum() / count, (correct * weight).sum() / count * 100
