"""Loading checkpoints without executing code."""
import argparse
import os.path as osp
import pickle
from typing import Any

import torch

from crosscl_mm.utils.safe_unpickling import allowed_globals, mmengine_checkpoint_globals


class CheckpointError(ValueError):
    """A file that is not a checkpoint we can read safely."""


# Official SoCo checkpoints keep their command-line options under 'opt' as an
# argparse.Namespace (main_pretrain.py:118-124): a plain attribute bag whose
# values are themselves checked by the weights-only unpickler.
RELEASE_GLOBALS = [argparse.Namespace]


def load_checkpoint_safely(path: str) -> Any:
    """``torch.load`` with ``weights_only=True``, plus the few plain types an
    mmengine training checkpoint holds (message-hub history, numpy scalars)
    and :data:`RELEASE_GLOBALS`.

    Nothing in the file can run code: anything else is refused with a
    :class:`CheckpointError` naming the file.
    """
    if not osp.isfile(path):
        raise CheckpointError(f'{path}: no such file')
    if osp.getsize(path) == 0:
        raise CheckpointError(f'{path}: empty file')
    try:
        with allowed_globals(mmengine_checkpoint_globals() + RELEASE_GLOBALS):
            return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f'{path}: refused to load: it holds objects other than tensors and plain data '
            f'(loading them could run code). Details: {str(exc).splitlines()[-1][:300]}') from None
    except Exception as exc:  # torch raises many types for files that are not checkpoints
        raise CheckpointError(f'{path}: not a PyTorch checkpoint ({type(exc).__name__}: '
                              f'{str(exc)[:200]})') from None
