"""Distributed helpers, all in one place. Each is the identity in a single
process, so the algorithm runs unchanged with or without a process group."""
import torch
import torch.distributed as dist
from torch import Tensor


def get_world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def get_rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


@torch.no_grad()
def concat_all_gather(tensor: Tensor) -> Tensor:
    """Concatenate ``tensor`` from all ranks along dim 0 (no gradient).

    Every rank must pass the same shape.
    """
    world_size = get_world_size()
    if world_size == 1:
        return tensor
    gathered = [torch.empty_like(tensor) for _ in range(world_size)]
    dist.all_gather(gathered, tensor.contiguous())
    return torch.cat(gathered, dim=0)


@torch.no_grad()
def batch_shuffle(x: Tensor, in_process: bool = False):
    """Shuffle the global batch across ranks so that BatchNorm statistics of
    the momentum encoder mix images from other ranks (MoCo's shuffle BN).

    Returns the local slice of the shuffled batch and the permutation that
    :func:`batch_unshuffle` inverts. With one process: ``(x, None)``, or,
    with ``in_process``, ``x`` permuted in the process (MoCo's one-GPU demo
    ``_batch_shuffle_single_gpu``, for split-batch BN).
    """
    world_size = get_world_size()
    if world_size == 1:
        if not in_process:
            return x, None
        idx_shuffle = torch.randperm(x.shape[0], device=x.device)
        return x[idx_shuffle], torch.argsort(idx_shuffle)
    local = x.shape[0]
    x_all = concat_all_gather(x)
    idx_shuffle = torch.randperm(x_all.shape[0], device=x.device)
    dist.broadcast(idx_shuffle, src=0)  # one permutation for all ranks
    idx_unshuffle = torch.argsort(idx_shuffle)
    return x_all[idx_shuffle.view(world_size, local)[get_rank()]], idx_unshuffle


@torch.no_grad()
def batch_unshuffle(x: Tensor, idx_unshuffle):
    """Undo :func:`batch_shuffle` for any tensor computed from the shuffled batch."""
    if idx_unshuffle is None:
        return x
    world_size = get_world_size()
    if world_size == 1:
        return x[idx_unshuffle]
    x_all = concat_all_gather(x)
    return x_all[idx_unshuffle.view(world_size, x.shape[0])[get_rank()]]
