from typing import List

import torch
from mmengine.model import ExponentialMovingAverage
from torch import Tensor, nn


class MomentumEncoder(ExponentialMovingAverage):
    """MoCo's momentum encoder: mmengine's :class:`ExponentialMovingAverage`
    of the online modules, updated without host synchronisation.

    The state (``module.*`` and ``steps``) and the update are mmengine's:
    the first update copies the online parameters, every later one is
    ``avg = avg + momentum * (online - avg)`` (``lerp``; mmengine's
    ``momentum`` is ``1 - m`` of MoCo's ``k = m * k + (1 - m) * q``), and
    buffers (BN statistics) are copied. Two things differ:

    - mmengine branches on ``if self.steps == 0`` with ``steps`` a device
      tensor, which reads it back to the host twice per iteration and, on a
      GPU, stalls the step until the online forward has finished. Here a
      host-side count decides; it is refreshed from ``steps`` whenever a
      checkpoint is loaded.
    - the parameters and buffers are updated in a few multi-tensor
      (``torch._foreach_*``) kernels instead of one or two per tensor.

    Args:
        model: the online modules (a ``ModuleDict`` for CrossCL).
        momentum: the weight of the online parameters in each update.
    """

    def __init__(self, model: nn.Module, momentum: float = 0.001) -> None:
        super().__init__(model, momentum=momentum, interval=1, update_buffers=False)
        self._host_steps = 0

    @property
    def num_updates(self) -> int:
        """How many updates have been made (``steps``, known on the host)."""
        return self._host_steps

    def blend(self, averaged: List[Tensor], sources: List[Tensor], step: int) -> None:
        """Update ``step`` (0-based; update 0 copies) of the averaged
        parameters, in place: ``avg += momentum * (online - avg)``, mmengine's
        ``lerp_``. Subclasses schedule the momentum."""
        torch._foreach_lerp_(averaged, sources, self.momentum)

    @torch.no_grad()
    def update_parameters(self, model: nn.Module) -> None:
        online = dict(model.named_parameters())
        averaged = [p.detach() for p in self.avg_parameters.values()]
        sources = [online[name].detach() for name in self.avg_parameters]
        if self._host_steps == 0:
            torch._foreach_copy_(averaged, sources)
        else:
            self.blend(averaged, sources, self._host_steps)
        buffers = [b.detach() for b in self.module.buffers()]
        if buffers:  # the _foreach ops refuse empty lists (a model without BN)
            torch._foreach_copy_(buffers, [b.detach() for b in model.buffers()])
        self.steps += 1
        self._host_steps += 1

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        steps = state_dict.get(prefix + 'steps')
        if steps is not None:
            self._host_steps = int(steps)  # once per load, from the checkpoint (on the CPU)
