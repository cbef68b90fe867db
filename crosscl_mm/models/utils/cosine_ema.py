import math
from typing import List, Optional

import torch
from mmengine.logging import MessageHub
from torch import Tensor, nn

from .momentum_encoder import MomentumEncoder


class CosineEMA(MomentumEncoder):
    """A momentum (target) copy of a model whose momentum rises from
    ``base_momentum`` to 1 on a half cosine over the run (BYOL, SoCo).

    Update ``k`` (0-based; one per training iteration) does, for every
    parameter::

        m_k = 1 - (1 - base_momentum) * (cos(pi * k / K) + 1) / 2
        target = target * m_k + online * (1 - m_k)

    which is SoCo's ``_momentum_update_key_encoder`` (official
    ``contrast/models/SoCo_FPN.py:97-116``). Update 0 copies the online
    weights (mmengine's averaged models start that way; the official update
    0 blends two identical copies, equal up to rounding).

    ``k`` is the ``steps`` buffer, saved in checkpoints, so a resumed run
    continues the schedule; the official counter restarts at 0 on every
    resume (its bug B2). ``K`` is ``max_iters`` if given, else the runner's
    (``MessageHub`` info ``max_iters``, set by ``RuntimeInfoHook``): the
    iterations the run really makes. The official ``K`` is
    ``int(len(dataset) / world_size / batch_size * epochs)``, a few
    iterations more when the last partial batch is dropped.

    The same schedule as mmpretrain's / mmselfsup's ``CosineEMA`` (whose
    ``momentum`` is the weight of the online model, ``1 - base_momentum``
    here), which crosscl_mm cannot import at module level in both
    environments. It is a :class:`MomentumEncoder` (no host synchronisation,
    multi-tensor updates) with a scheduled momentum and the official
    expression.

    Buffers (BN running statistics) are copied, as MomentumEncoder does; they
    do not enter the training forward, whose BN runs in train mode.

    Args:
        model: the online modules to copy.
        base_momentum: momentum of update 0.
        max_iters: ``K``; None to read it from the runner.
    """

    def __init__(self, model: nn.Module, base_momentum: float = 0.99,
                 max_iters: Optional[int] = None) -> None:
        if not 0.0 <= base_momentum <= 1.0:
            raise ValueError(f'base_momentum must be in [0, 1], got {base_momentum}')
        super().__init__(model, momentum=1. - base_momentum)
        self.base_momentum = base_momentum
        self.max_iters = max_iters

    def total_updates(self) -> int:
        if self.max_iters is not None:
            return int(self.max_iters)
        max_iters = MessageHub.get_current_instance().get_info('max_iters')
        if max_iters is None:
            raise RuntimeError('CosineEMA: max_iters is unknown; pass max_iters= or train in an '
                               'mmengine Runner (RuntimeInfoHook records it)')
        return int(max_iters)

    def momentum_at(self, step: int) -> float:
        """``m_k`` of update ``step``."""
        k, total = int(step), self.total_updates()
        return 1. - (1. - self.base_momentum) * (math.cos(math.pi * k / total) + 1.) / 2.

    def blend(self, averaged: List[Tensor], sources: List[Tensor], step: int) -> None:
        # The official expression, term by term, in the parameter's dtype:
        # target * m + online * (1 - m), each product rounded on its own.
        m = self.momentum_at(step)
        torch._foreach_mul_(averaged, m)
        torch._foreach_add_(averaged, torch._foreach_mul(sources, 1. - m))
