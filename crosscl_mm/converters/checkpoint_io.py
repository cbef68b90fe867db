"""Loading checkpoints without executing code, and writing files atomically."""
import os
import os.path as osp
import pickle
import tempfile
from typing import Any, Callable

import torch


class CheckpointError(ValueError):
    """A file that is not a checkpoint we can read safely."""


def load_checkpoint_safely(path: str) -> Any:
    """``torch.load`` with ``weights_only=True``, plus the few plain types an
    mmengine training checkpoint holds (message-hub history, numpy scalars).

    Nothing in the file can run code: anything else is refused with a
    :class:`CheckpointError` naming the file.
    """
    from crosscl_mm.compat import _mmengine_checkpoint_globals

    if not osp.isfile(path):
        raise CheckpointError(f'{path}: no such file')
    if osp.getsize(path) == 0:
        raise CheckpointError(f'{path}: empty file')
    try:
        with torch.serialization.safe_globals(_mmengine_checkpoint_globals()):
            return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f'{path}: refused to load: it holds objects other than tensors and plain data '
            f'(loading them could run code). Details: {str(exc).splitlines()[-1][:300]}') from None
    except Exception as exc:  # torch raises many types for files that are not checkpoints
        raise CheckpointError(f'{path}: not a PyTorch checkpoint ({type(exc).__name__}: '
                              f'{str(exc)[:200]})') from None


def save_atomically(path: str, write: Callable[[Any], None]) -> None:
    """Call ``write(fileobj)`` on a temporary file beside ``path``, then rename
    it over ``path``: readers never see a partial file, and a failure leaves
    no output behind."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + osp.basename(path) + '.', suffix='.partial', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
