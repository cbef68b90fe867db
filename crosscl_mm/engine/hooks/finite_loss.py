import math
from typing import Optional

import torch
from mmengine.hooks import Hook, LoggerHook

from crosscl_mm.registry import HOOKS


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Stop training at the first non-finite loss, naming the iteration and
    the terms that went bad, and never save a checkpoint after it.

    The check runs on the device: every iteration compares the logged losses
    with ``isfinite`` and remembers the first bad iteration and its values,
    in tensors. They are read back to the host (one synchronisation) only
    every ``interval`` iterations, before every checkpoint is written and at
    the end of training, so the check adds no host synchronisation to the
    other iterations. A non-finite loss therefore stops training at most
    ``interval - 1`` iterations later, before the next checkpoint: the last
    checkpoint on disk predates it, and ``--resume`` continues from
    known-good weights.

    Args:
        interval: iterations between read-backs; by default the
            ``LoggerHook``'s interval (the runner reads the losses back for
            its log then anyway), or 50 without one.
    """

    priority = 'VERY_HIGH'

    def __init__(self, interval: Optional[int] = None) -> None:
        if interval is not None and interval < 1:
            raise ValueError(f'FiniteLossHook.interval must be >= 1, got {interval}')
        self.interval = interval
        self._names = None
        self._bad_iter = self._bad_epoch = self._bad_values = None

    def before_train(self, runner) -> None:
        if self.interval is None:
            loggers = [h for h in runner.hooks if isinstance(h, LoggerHook)]
            self.interval = loggers[0].interval if loggers else 50

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        losses = {k: v for k, v in (outputs or {}).items() if 'loss' in k}
        if not losses:
            return
        if self._names is not None and list(losses) != self._names:
            self._check(runner)  # the set of terms changed: settle the old record first
        if self._names is None:
            self._start_record(losses)
        device = self._bad_values.device
        values = torch.stack([torch.as_tensor(v, device=device).detach().reshape(())
                              for v in losses.values()]).double()
        first = (~torch.isfinite(values).all()) & (self._bad_iter < 0)
        # Tensor ops only: no read-back here.
        self._bad_iter = torch.where(first, runner.iter + 1, self._bad_iter)
        self._bad_epoch = torch.where(first, runner.epoch + 1, self._bad_epoch)
        self._bad_values = torch.where(first, values, self._bad_values)
        if self.every_n_train_iters(runner, self.interval):
            self._check(runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        self._check(runner)

    def after_train(self, runner) -> None:
        self._check(runner)

    def _start_record(self, losses: dict) -> None:
        self._names = list(losses)
        first = next(iter(losses.values()))
        device = first.device if isinstance(first, torch.Tensor) else torch.device('cpu')
        self._bad_iter = torch.full((), -1, dtype=torch.long, device=device)
        self._bad_epoch = torch.full((), -1, dtype=torch.long, device=device)
        self._bad_values = torch.zeros(len(losses), dtype=torch.float64, device=device)

    def _check(self, runner) -> None:
        """Read the record back (the one synchronisation) and raise if it holds a bad iteration."""
        if self._names is None:
            return
        record = torch.cat([self._bad_iter.reshape(1).double(), self._bad_epoch.reshape(1).double(),
                            self._bad_values]).tolist()
        names, self._names = self._names, None
        iteration, epoch, values = int(record[0]), int(record[1]), record[2:]
        if iteration < 0:
            return
        bad = {k: v for k, v in zip(names, values) if not math.isfinite(v)}
        raise FloatingPointError(
            f'non-finite loss at iteration {iteration} (epoch {epoch}): '
            + ', '.join(f'{k}={v}' for k, v in bad.items())
            + f'. The last checkpoint in {runner.work_dir} predates it; fix the cause and '
            'resume from it with --resume.')
