import copy
from typing import Callable, List, Optional, Tuple

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from crosscl_mm.registry import HOOKS


def _endless(loader):
    """Batches of ``loader``, pass after pass (an InfiniteSampler's loader
    has one endless pass)."""
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise RuntimeError('PreciseBN: the training loader yields no batch')


def training_batches(runner, num_workers: int, owner: str):
    """An endless iterator over batches of a loader of the caller's own, built
    from the config's ``train_dataloader`` over the training dataset (the
    training loop's data order is not touched), and the number of batches
    in one pass over the training set (batches of all ranks)."""
    cfg = runner.cfg.get('train_dataloader')
    if not isinstance(cfg, dict):
        raise RuntimeError(f'{owner} builds its loader from the config\'s train_dataloader; '
                           f'build the runner with Runner.from_cfg')
    cfg = copy.deepcopy(cfg)
    cfg['dataset'] = runner.train_loop.dataloader.dataset
    cfg['num_workers'] = num_workers
    if num_workers == 0:
        cfg['persistent_workers'] = False
        cfg.pop('prefetch_factor', None)
    per_pass = max(1, len(cfg['dataset']) // (cfg['batch_size'] * get_world_size()))
    loader = runner.build_dataloader(cfg, seed=runner.seed + 1)
    return _endless(loader), per_pass


@torch.no_grad()
def average_batch_statistics(layers: List[_BatchNorm], forward: Callable[[int], None],
                             num_iters: int) -> Tuple[List[Tensor], List[Tensor]]:
    """Per layer, the average over ``num_iters`` calls of ``forward(n)`` of
    the batch mean and the unbiased batch variance its input had, then
    averaged over the ranks (``fvcore.nn.precise_bn.update_bn_stats``)::

        mean = 1/N sum_n mean_n,    var = 1/N sum_n var_n

    Each layer is run at momentum 1, so after a call its running buffers
    hold that call's batch statistics; its momentum is restored after, and
    its running buffers are left at the last call's statistics (the caller
    writes the averages where they belong). A layer called several times
    in one ``forward`` counts its last call only.
    """
    means = [torch.zeros_like(m.running_mean) for m in layers]
    variances = [torch.zeros_like(m.running_var) for m in layers]
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.momentum = 1.0
    try:
        for n in range(num_iters):
            forward(n)
            for layer, mean, var in zip(layers, means, variances):
                mean += (layer.running_mean - mean) / (n + 1)
                var += (layer.running_var - var) / (n + 1)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    for mean, var in zip(means, variances):
        all_reduce(mean, op='mean')
        all_reduce(var, op='mean')
    return means, variances


@HOOKS.register_module()
class DetPreciseBNHook(Hook):
    """Re-estimate BatchNorm statistics before each validation, as
    detectron2's ``hooks.PreciseBN`` does with ``TEST.PRECISE_BN.ENABLED``.

    Training normalises every batch by its own statistics, while evaluation
    uses running averages that lag behind the weights. Before each
    validation of the training loop, and after its last iteration (so the
    final checkpoint carries them), this hook feeds ``num_iters`` batches of
    training data through the model's training forward (``mode='loss'``,
    without gradients) with every BatchNorm layer that is in training mode set
    to momentum 1, and sets each layer's running statistics to the average of
    the per-batch ones:

        running_mean = 1/N sum_n mean_n,    running_var = 1/N sum_n var_n

    (``fvcore.nn.precise_bn.update_bn_stats``, which detectron2's hook calls;
    ``var_n`` is the unbiased batch variance BatchNorm stores). SyncBN makes
    the batch statistics global, so every rank gets the same result; plain BN
    (and SyncBN turned into BN on CPU) computes them per rank, and the
    averages are then averaged over the ranks, so that all ranks evaluate
    the same model.

    The batches come from a loader of the hook's own, built once from
    ``train_dataloader`` over the training dataset (detectron2 also builds a
    separate train loader, with no workers by default), and its iterator is
    kept across calls; the training loop's data order is not touched.

    mmpretrain's (and mmcls's) ``PreciseBNHook`` do not fit an mmdet run:
    they forward in ``'tensor'`` mode, where mmdet's two-stage detectors feed
    the RoI heads test-time proposals instead of the sampled training RoIs
    whose statistics detectron2 collects; they iterate the training loop's
    own dataloader, whose ``InfiniteSampler`` generator is shared, so in an
    iteration-based run the next training iteration raises ``StopIteration``
    (seen with mmpretrain 1.2.0 and mmcls 1.0.0rc6); and each lives in its
    own package's registry, so one config cannot name it in both
    environments.

    Args:
        num_iters: training batches per estimate (detectron2's
            ``TEST.PRECISE_BN.NUM_ITER``, 200). Capped at one pass over the
            training set, so a small dataset is not repeated.
        num_workers: workers of the hook's loader (detectron2: 0).
    """

    priority = 'ABOVE_NORMAL'  # before CheckpointHook saves the model

    def __init__(self, num_iters: int = 200, num_workers: int = 0) -> None:
        if num_iters < 1:
            raise ValueError(f'num_iters must be >= 1, got {num_iters}')
        self.num_iters = num_iters
        self.num_workers = num_workers
        self._batches = None

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        loop = runner.train_loop
        if isinstance(loop, IterBasedTrainLoop) and \
                self._validates_or_ends(runner, runner.iter + 1, loop.max_iters):
            self.update_stats(runner, f'iteration {runner.iter + 1}')

    def after_train_epoch(self, runner) -> None:
        loop = runner.train_loop
        if isinstance(loop, EpochBasedTrainLoop) and \
                self._validates_or_ends(runner, runner.epoch + 1, loop.max_epochs):
            self.update_stats(runner, f'epoch {runner.epoch + 1}')

    @staticmethod
    def _validates_or_ends(runner, step: int, last: int) -> bool:
        """Whether the train loop validates after ``step`` (the condition of
        mmengine's loops) or ``step`` is the last one."""
        loop = runner.train_loop
        validates = runner.val_loop is not None and step >= loop.val_begin and \
            (step % loop.val_interval == 0 or step == last)
        return validates or step == last

    def _training_batches(self, runner):
        if self._batches is None:
            self._batches, self._per_pass = training_batches(runner, self.num_workers,
                                                             type(self).__name__)
        return self._batches

    @torch.no_grad()
    def update_stats(self, runner, when: Optional[str] = None) -> None:
        """Re-estimate the statistics of every BatchNorm layer in training mode."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        layers: List[_BatchNorm] = [m for m in model.modules() if isinstance(m, _BatchNorm)
                                    and m.training and m.track_running_stats]
        if not layers:
            print_log('DetPreciseBNHook: no BatchNorm layer in training mode; nothing to do',
                      logger='current')
            return
        batches = self._training_batches(runner)
        num_iters = min(self.num_iters, self._per_pass)

        def forward(_):
            data = model.data_preprocessor(next(batches), True)
            model(**data, mode='loss')

        means, variances = average_batch_statistics(layers, forward, num_iters)
        for layer, mean, var in zip(layers, means, variances):
            layer.running_mean.copy_(mean)
            layer.running_var.copy_(var)
        print_log(f'DetPreciseBNHook: re-estimated the statistics of {len(layers)} BatchNorm '
                  f'layers over {num_iters} training batches per process'
                  + (f' (after {when})' if when else ''), logger='current')
