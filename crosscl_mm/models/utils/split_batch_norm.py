"""Shuffle BN in one process: MoCo's split-batch BatchNorm.

MoCo's shuffle BN (``batch_shuffle`` / ``batch_unshuffle``) spreads each
rank's key batch over the other ranks, so that the key encoder's per-GPU
BatchNorm never normalises a key with statistics of the batch its query
came from (the positive pair would otherwise be found through the batch
statistics, MoCo section 3.3). In one process there is nothing to shuffle
across: the key encoder's BatchNorm sees the same images as the query
encoder's. MoCo's one-GPU demo (facebookresearch/moco ``colab/moco_cifar10_demo.ipynb`` @f736491,
``SplitBatchNorm`` and ``_batch_shuffle_single_gpu``) emulates N GPUs
instead: every BatchNorm computes its statistics over N groups of the batch
and the key batch is permuted in the process before the key encoder.
"""
import logging
from typing import Set

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from torch import Tensor, nn

from crosscl_mm.utils import get_world_size


class SplitBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are those of ``num_splits``
    equal, contiguous groups of the batch: samples ``[g * n/N, (g+1) * n/N)``
    form group ``g``, as the slices :func:`batch_shuffle` hands to ranks, so
    N groups in one process compute what N ranks with per-rank BN compute
    on the same (permuted) batch. The running statistics are updated with
    each group's statistics and averaged over the groups (the demo's
    ``SplitBatchNorm``; it groups sample ``i`` by ``i mod N``, the same law
    under a random permutation). In eval mode it is a plain BatchNorm2d.

    The parameter and buffer names are BatchNorm2d's, so checkpoints and
    converters do not see the difference.
    """

    def __init__(self, num_features: int, num_splits: int = 1, **kwargs) -> None:
        super().__init__(num_features, **kwargs)
        if num_splits < 1:
            raise ValueError(f'SplitBatchNorm2d: num_splits must be >= 1, got {num_splits}')
        self.num_splits = num_splits

    def forward(self, x: Tensor) -> Tensor:
        splits = self.num_splits
        if not self.training or splits == 1:
            return super().forward(x)
        n, c = x.shape[:2]
        if n % splits:
            raise ValueError(f'SplitBatchNorm2d: a batch of {n} cannot be split into '
                             f'{splits} equal groups (split_batch_bn must divide the batch '
                             f'size of every forward)')
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative average, as BatchNorm2d
                momentum = 1.0 / float(self.num_batches_tracked)
        # (n, C, ...) -> (n / N, N * C, ...): channel block g holds group g.
        grouped = x.reshape(splits, n // splits, *x.shape[1:]).transpose(0, 1)
        grouped = grouped.reshape(n // splits, splits * c, *x.shape[2:])
        mean = self.running_mean.repeat(splits) if self.track_running_stats else None
        var = self.running_var.repeat(splits) if self.track_running_stats else None
        weight = self.weight.repeat(splits) if self.affine else None
        bias = self.bias.repeat(splits) if self.affine else None
        out = F.batch_norm(grouped, mean, var, weight, bias, True, momentum, self.eps)
        if self.track_running_stats:
            with torch.no_grad():
                self.running_mean.copy_(mean.view(splits, c).mean(0))
                self.running_var.copy_(var.view(splits, c).mean(0))
        out = out.reshape(n // splits, splits, c, *x.shape[2:]).transpose(0, 1)
        return out.reshape(x.shape)

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, num_splits={self.num_splits}'


def convert_split_batch_norm(module: nn.Module, num_splits: int) -> nn.Module:
    """``module`` with every ``nn.BatchNorm2d`` (not SyncBN) replaced by a
    :class:`SplitBatchNorm2d` with the same state (in place where possible,
    as ``nn.SyncBatchNorm.convert_sync_batchnorm``)."""
    if num_splits == 1:
        return module
    if type(module) is nn.BatchNorm2d:
        split = SplitBatchNorm2d(module.num_features, num_splits, eps=module.eps,
                                 momentum=module.momentum, affine=module.affine,
                                 track_running_stats=module.track_running_stats)
        split.load_state_dict(module.state_dict())
        split.train(module.training)
        for name, param in module.named_parameters(recurse=False):
            getattr(split, name).requires_grad_(param.requires_grad)
        return split
    for name, child in module.named_children():
        converted = convert_split_batch_norm(child, num_splits)
        if converted is not child:
            setattr(module, name, converted)
    return module


_warned: Set[str] = set()


def warn_if_shuffle_bn_is_identity(owner: str, split_batch_bn: int) -> bool:
    """Warn once per process and algorithm when shuffle BN does nothing:
    one process and no split-batch BN. Returns whether it warned."""
    if get_world_size() > 1 or split_batch_bn > 1 or owner in _warned:
        return False
    _warned.add(owner)
    print_log(
        f'{owner}: one process, so shuffle BN is the identity: the key encoder\'s BatchNorm '
        f'normalises each key with the statistics of the same images the queries come from, '
        f'which lets the contrastive task be solved through the batch statistics (MoCo, '
        f'section 3.3). Set model.split_batch_bn=N (e.g. 8; it must divide the batch size) '
        f'for the split-batch BatchNorm of MoCo\'s one-GPU demo, or train on several '
        f'processes. README, "One process".', logger='current', level=logging.WARNING)
    return True
