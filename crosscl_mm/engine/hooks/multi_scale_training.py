from typing import Sequence

import numpy as np
from mmengine.hooks import Hook
from mmengine.logging import print_log

from crosscl_mm.registry import HOOKS


def mst_size_for_epoch(epoch: int, max_epochs: int, sizes: Sequence[int], seed: int,
                       fraction: float = 0.01) -> int:
    """The view size multi-scale training uses in ``epoch`` (0-based).

    The size changes every ``fraction`` of the run (1%, at least one epoch;
    the reference's ``int(0.01 * epochs)`` is 0 below 100 epochs and crashes)
    and is drawn from ``sizes`` by a generator seeded with ``(seed, block)``:
    every rank, and a resumed run with the same seed, gets the same size with
    no communication.
    """
    period = max(1, round(fraction * max_epochs))
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, epoch // period])
    return int(sizes[rng.integers(len(sizes))])


@HOOKS.register_module()
class MultiScaleTrainingHook(Hook):
    """Multi-scale training: every 1% of the epochs, one view size from
    ``sizes`` for all ranks, set on the running pipeline.

    The size is written to the shared-memory size of every
    :class:`PairedRandomResizedCrop` in the train dataset before the epoch's
    data iterator starts, so persistent workers pick it up and no
    dataloader is rebuilt. Window and negative geometry follow the size.

    Args:
        sizes: candidate view sizes (the paper: 224, 384, 480).
        fraction: fraction of the epochs between changes.
    """

    priority = 'NORMAL'

    def __init__(self, sizes: Sequence[int] = (224, 384, 480), fraction: float = 0.01) -> None:
        self.sizes = [int(s) for s in sizes]
        self.fraction = fraction

    @staticmethod
    def _crop_transforms(runner):
        dataset = runner.train_dataloader.dataset
        while hasattr(dataset, 'dataset'):  # dataset wrappers
            dataset = dataset.dataset
        found = [t for t in getattr(dataset.pipeline, 'transforms', [])
                 if hasattr(t, 'set_view_size')]
        if not found:
            raise RuntimeError('MultiScaleTrainingHook needs a PairedRandomResizedCrop in the '
                               'train pipeline')
        return found

    def before_train_epoch(self, runner) -> None:
        size = mst_size_for_epoch(runner.epoch, runner.max_epochs, self.sizes, runner.seed,
                                  self.fraction)
        for transform in self._crop_transforms(runner):
            if transform.size != size:
                transform.set_view_size(size)
                print_log(f'MultiScaleTrainingHook: epoch {runner.epoch + 1} uses view size {size}',
                          logger='current')
        runner.message_hub.update_info('mst_view_size', size)
