"""A hook for tests only: raise on one rank, to check that a distributed job
then ends promptly with a non-zero exit instead of hanging."""
import torch.distributed as dist
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class RaiseOnRankHook(Hook):

    def __init__(self, rank: int = 1, at_iter: int = 1):
        self.rank = rank
        self.at_iter = at_iter

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        rank = dist.get_rank() if dist.is_initialized() else 0
        if rank == self.rank and runner.iter + 1 == self.at_iter:
            raise RuntimeError(f'injected failure on rank {rank}')
