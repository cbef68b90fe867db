from typing import Callable, Optional

import torch
from torch.optim import Optimizer

from crosscl_mm.registry import OPTIMIZERS


@OPTIMIZERS.register_module()
class LARS(Optimizer):
    """SGD with momentum and layer-wise adaptive rate scaling, as SoCo trains
    (official ``contrast/lars.py``: ``LARS(SGD(momentum=0.9))`` with the
    groups of ``add_weight_decay``; `You et al. 2017
    <https://arxiv.org/abs/1708.03888>`_).

    For a parameter ``w`` with gradient ``g``; weights with more than one
    dimension (conv and linear weights) first get weight decay and the trust
    ratio::

        g = g + weight_decay * w
        g = g * trust_coefficient * ||w|| / (||g|| + eps)   (if ||w|| > 0 and ||g|| > 0)

    one-dimensional ones (biases, norm weights) keep ``g`` as it is (no
    decay, no scaling) when ``exclude_1d``. Then SGD with momentum
    (PyTorch's form, no dampening)::

        v = momentum * v + g     (v = g at the first step)
        w = w - lr * v

    Args:
        params: parameters or parameter groups.
        lr: learning rate.
        momentum: SGD momentum.
        weight_decay: decay of the scaled parameters.
        trust_coefficient: LARS trust coefficient.
        eps: added to the gradient norm.
        exclude_1d: keep one-dimensional parameters out of decay and scaling.
    """

    def __init__(self, params, lr: float, momentum: float = 0.9, weight_decay: float = 0.0,
                 trust_coefficient: float = 0.001, eps: float = 1e-8,
                 exclude_1d: bool = True) -> None:
        if lr < 0 or momentum < 0 or weight_decay < 0 or trust_coefficient < 0 or eps < 0:
            raise ValueError(f'LARS: lr, momentum, weight_decay, trust_coefficient and eps must '
                             f'be >= 0, got {lr}, {momentum}, {weight_decay}, '
                             f'{trust_coefficient}, {eps}')
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay,
                                      trust_coefficient=trust_coefficient, eps=eps,
                                      exclude_1d=exclude_1d))

    @torch.no_grad()
    def step(self, closure: Optional[Callable] = None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group['params']:
                if p.grad is None:
                    continue
                grad = p.grad
                if not (group['exclude_1d'] and p.ndim == 1):
                    if group['weight_decay'] > 0:
                        grad = grad.add(p, alpha=group['weight_decay'])
                    param_norm, grad_norm = p.norm(), grad.norm()
                    if param_norm > 0 and grad_norm > 0:
                        grad = grad.mul(group['trust_coefficient'] * param_norm
                                        / (grad_norm + group['eps']))
                state = self.state[p]
                if 'momentum_buffer' not in state:
                    state['momentum_buffer'] = grad.detach().clone()
                else:
                    state['momentum_buffer'].mul_(group['momentum']).add_(grad)
                p.add_(state['momentum_buffer'], alpha=-group['lr'])
        return loss
