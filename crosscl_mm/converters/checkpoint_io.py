"""Loading checkpoints without executing code."""
import argparse
import os.path as osp
import pickle
import warnings
import zipfile
from typing import Any

import torch

from crosscl_mm.utils.safe_unpickling import (RefusedGlobalError, allowed_globals,
                                              load_numpy_pickle, mmengine_checkpoint_globals)


class CheckpointError(ValueError):
    """A file that is not a checkpoint we can read safely."""


# Official SoCo checkpoints keep their command-line options under 'opt' as an
# argparse.Namespace (main_pretrain.py:118-124): a plain attribute bag whose
# values are themselves checked by the weights-only unpickler.
RELEASE_GLOBALS = [argparse.Namespace]


def load_checkpoint_safely(path: str) -> Any:
    """``torch.load`` with ``weights_only=True``, plus the few plain types an
    mmengine training checkpoint holds (message-hub history, numpy scalars)
    and :data:`RELEASE_GLOBALS`; or, for a file that is a plain pickle and
    not a PyTorch file (a detectron2 ``.pkl``, which ``torch.load`` cannot
    read at all), :func:`~crosscl_mm.utils.safe_unpickling.load_numpy_pickle`,
    which admits numpy arrays and plain data only; its arrays come back as
    tensors.

    Nothing in the file can run code: anything else is refused with a
    :class:`CheckpointError` naming the file.
    """
    if not osp.isfile(path):
        raise CheckpointError(f'{path}: no such file')
    if osp.getsize(path) == 0:
        raise CheckpointError(f'{path}: empty file')
    try:
        with allowed_globals(mmengine_checkpoint_globals() + RELEASE_GLOBALS), \
                warnings.catch_warnings():
            # torch warns about the protocol of any plain pickle before it fails
            # on it; a detectron2 .pkl is read below instead.
            warnings.filterwarnings('ignore', message='Detected pickle protocol')
            return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as exc:
        torch_error = CheckpointError(
            f'{path}: refused to load: it holds objects other than tensors and plain data '
            f'(loading them could run code). Details: {str(exc).splitlines()[-1][:300]}')
    except Exception as exc:  # torch raises many types for files that are not checkpoints
        torch_error = CheckpointError(f'{path}: not a PyTorch checkpoint ({type(exc).__name__}: '
                                      f'{str(exc)[:200]})')
    if zipfile.is_zipfile(path):
        raise torch_error from None
    plain = _load_plain_pickle(path)
    if plain is None:
        raise torch_error from None
    return plain


def _load_plain_pickle(path: str):
    """A detectron2-style pickle of numpy arrays as a dict with tensors, or
    None when the file is no such pickle (then torch's error stands: a legacy
    PyTorch file starts with a pickled magic number, not a dict)."""
    try:
        with open(path, 'rb') as f:
            obj = load_numpy_pickle(f)
    except RefusedGlobalError as exc:
        raise CheckpointError(
            f'{path}: refused to load: a plain pickle (not a PyTorch file, as detectron2 .pkl '
            f'files are), read with an unpickler that admits numpy arrays and plain data only; '
            f'it names {exc.module}.{exc.name}, which that unpickler does not allow (loading it '
            f'could run code)') from None
    except pickle.UnpicklingError as exc:
        if 'dtype object' in str(exc):
            raise CheckpointError(f'{path}: refused to load: {exc}') from None
        return None
    except Exception:  # truncated or not a pickle at all
        return None
    return _arrays_to_tensors(obj) if isinstance(obj, dict) else None


def _arrays_to_tensors(value):
    import numpy as np
    if isinstance(value, dict):
        return type(value)((k, _arrays_to_tensors(v)) for k, v in value.items())
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.array(value, order="C", copy=True))  # 0-d stays 0-d
    return value
