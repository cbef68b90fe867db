import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crosscl_mm.utils import concat_all_gather


class KeyQueue(nn.Module):
    """MoCo's memory bank: the last ``length`` keys of all ranks, first in,
    first out.

    The keys live in a ``(dim, length)`` buffer ``keys`` (MoCo's layout,
    initialised to random unit vectors) with a write pointer ``ptr``; both are
    saved with the model, so a resumed run continues with the same negatives.

    Args:
        length: number of keys kept.
        dim: dimension of a key.
    """

    def __init__(self, length: int, dim: int) -> None:
        super().__init__()
        if length <= 0 or dim <= 0:
            raise ValueError(f'KeyQueue needs a positive length and dim, got {length}, {dim}')
        self.length = length
        self.register_buffer('keys', F.normalize(torch.randn(dim, length), dim=0))
        self.register_buffer('ptr', torch.zeros(1, dtype=torch.long))

    def negatives(self) -> Tensor:
        """The queued keys as ``(length, dim)`` rows, copied so that a graph
        that uses them is unaffected by the next :meth:`push`."""
        return self.keys.clone().t()

    @torch.no_grad()
    def push(self, keys: Tensor) -> None:
        """Write ``(N, dim)`` keys of every rank, in rank order, at the
        pointer, wrapping around.

        Any batch size works; a batch larger than the queue keeps its last
        ``length`` keys. Indices are computed on the device, so there is no
        host synchronisation.
        """
        keys = concat_all_gather(keys)
        n = keys.shape[0]
        keys = keys[-self.length:]
        start = self.ptr + (n - keys.shape[0])
        idx = (start + torch.arange(keys.shape[0], device=keys.device)) % self.length
        self.keys.index_copy_(1, idx, keys.t().to(self.keys.dtype))
        self.ptr.copy_((self.ptr + n) % self.length)

    def extra_repr(self) -> str:
        return f'length={self.length}, dim={self.keys.shape[0]}'
