from typing import List, Optional, Sequence

import torch
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from torch.nn.modules.batchnorm import _BatchNorm

from crosscl_mm.registry import HOOKS
from .precise_bn import average_batch_statistics, training_batches


@HOOKS.register_module()
class GlobalViewBNHook(Hook):
    """Save every checkpoint with the backbone's BatchNorm statistics
    re-estimated on the global views alone.

    DetCo's online backbone sees the 224-px global views ``I_q`` and the
    9N 64-px patches of ``P_q`` in every step, so its running statistics
    (momentum 0.1) mix the two, about half each: not the statistics of a
    whole image. Fine-tuning with BN in training mode (SyncBN, the
    transfer protocol) re-estimates them anyway, but a frozen-backbone
    evaluation (linear probe, frozen-BN detection) would use them as they
    are. After each training epoch (iteration, for an iteration-based
    loop) at which the run's ``CheckpointHook`` saves, and before it saves,
    this hook feeds ``num_iters`` training batches' global views
    (``inputs[v]`` for ``v`` in ``views``, each view its own batch) through
    ``model.<module>`` in training mode, without gradients, and sets the
    running statistics of each of its BatchNorm layers to the average of
    the per-batch ones (PreciseBN, :func:`average_batch_statistics`,
    averaged over the processes). Only running statistics change: training
    (BN in training mode) never reads them, so the loss and the weights
    are unchanged.

    Why in the run and not in the converter: a checkpoint is converted
    without data and without building a model from a config (a config is
    code); the statistics need both, which the training run has. Why not
    in ``before_save_checkpoint``: mmengine calls it on rank 0 only, and
    the estimate is averaged over all processes.

    Args:
        num_iters: training batches per estimate (detectron2's
            ``TEST.PRECISE_BN.NUM_ITER``, 200), capped at one pass over the
            training set.
        views: indices of the global views in a batch's ``inputs``.
        module: attribute of the model whose BatchNorm layers are
            re-estimated.
        num_workers: workers of the hook's own loader.
    """

    priority = 'LOW'  # after the other hooks of the step, before CheckpointHook (VERY_LOW)

    def __init__(self, num_iters: int = 200, views: Sequence[int] = (0, 1),
                 module: str = 'backbone', num_workers: int = 0) -> None:
        if num_iters < 1:
            raise ValueError(f'GlobalViewBNHook: num_iters must be >= 1, got {num_iters}')
        if not views:
            raise ValueError('GlobalViewBNHook: views must name at least one input')
        self.num_iters = num_iters
        self.views = tuple(views)
        self.module = module
        self.num_workers = num_workers
        self._batches = None

    @staticmethod
    def _checkpoint_hook(runner) -> Optional[CheckpointHook]:
        return next((h for h in runner.hooks if isinstance(h, CheckpointHook)), None)

    def after_train_epoch(self, runner) -> None:
        ckpt = self._checkpoint_hook(runner)
        if ckpt is not None and ckpt.by_epoch and (
                ckpt.every_n_epochs(runner, ckpt.interval, ckpt.save_begin)
                or (ckpt.save_last and ckpt.is_last_train_epoch(runner))):
            self.update_stats(runner)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        ckpt = self._checkpoint_hook(runner)
        if ckpt is not None and not ckpt.by_epoch and (
                ckpt.every_n_train_iters(runner, ckpt.interval, ckpt.save_begin)
                or (ckpt.save_last and ckpt.is_last_train_iter(runner))):
            self.update_stats(runner)

    @torch.no_grad()
    def update_stats(self, runner) -> None:
        """Set the running statistics of ``model.<module>``'s BatchNorm
        layers to their average over the global views of ``num_iters``
        training batches (every process must call it)."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, self.module):
            raise AttributeError(f'GlobalViewBNHook: the model ({type(model).__name__}) has no '
                                 f'{self.module!r} to re-estimate')
        encoder = getattr(model, self.module)
        layers: List[_BatchNorm] = [m for m in encoder.modules()
                                    if isinstance(m, _BatchNorm) and m.track_running_stats]
        if not layers:
            return
        if self._batches is None:
            self._batches, self._per_pass = training_batches(runner, self.num_workers,
                                                             type(self).__name__)
        num_iters = min(self.num_iters, self._per_pass)
        training = encoder.training
        encoder.train()
        current = {}

        def forward(n):
            view = n % len(self.views)
            if view == 0:
                current['inputs'] = model.data_preprocessor(next(self._batches), True)['inputs']
            encoder(current['inputs'][self.views[view]])

        try:
            means, variances = average_batch_statistics(layers, forward,
                                                        num_iters * len(self.views))
        finally:
            encoder.train(training)
        for layer, mean, var in zip(layers, means, variances):
            layer.running_mean.copy_(mean)
            layer.running_var.copy_(var)
        print_log(f'GlobalViewBNHook: {self.module} BatchNorm statistics of {len(layers)} '
                  f'layers re-estimated on views {self.views} of {num_iters} training batches '
                  f'per process, for the checkpoint', logger='current')
