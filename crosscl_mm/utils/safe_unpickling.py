"""What a checkpoint may unpickle besides tensors: the allow-list that keeps
``weights_only=True`` loading safe for mmengine training checkpoints. Used by
the resume fix (:mod:`crosscl_mm.compat`) and by the converters."""
import contextlib
import importlib
import inspect
import pickle
from typing import Iterator, Sequence

import torch


def _history_buffer_method(owner, name):
    """A ``getattr`` that only returns HistoryBuffer's registered statistics.

    HistoryBuffer pickles its statistics functions (``min``, ``max``,
    ``current``, ``mean``) as ``getattr(HistoryBuffer, name)``; allowing the
    real ``getattr`` would let a checkpoint reach any attribute of any allowed
    object, and HistoryBuffer installs what it unpickles into a class-level
    registry that mmengine later calls. This stand-in resolves exactly the
    functions HistoryBuffer itself defines and refuses everything else.
    """
    from mmengine.logging import HistoryBuffer
    method = HistoryBuffer.__dict__.get(name) if owner is HistoryBuffer else None
    if method is None or not callable(method) or name.startswith('_'):
        raise pickle.UnpicklingError(f'refused getattr({owner!r}, {name!r}) in a checkpoint')
    return method


def registered_statistics():
    """The custom statistics this process registered with
    ``HistoryBuffer.register_statistics``.

    Every HistoryBuffer pickles the whole class-level registry, so a run whose
    code registers a statistic (as mmengine's own tests do) saves checkpoints
    that name that function; they may load it only where the same function is
    registered again, that is where the user's code has run. Functions are
    pickled by reference, so only module-level ones can be saved at all; the
    defaults (``min``, ``max``, ``current``, ``mean``) come through
    :func:`_history_buffer_method` instead.
    """
    from mmengine.logging import HistoryBuffer
    return [method for method in HistoryBuffer._statistics_methods.values()
            if inspect.isfunction(method) and '.' not in method.__qualname__]


def mmengine_checkpoint_globals():
    """Every non-tensor type an mmengine training checkpoint pickles: the
    message hub's HistoryBuffer (with its statistics functions, and the custom
    ones this process registered, see :func:`registered_statistics`) and the
    numpy arrays, scalars and dtypes it holds. Nothing here can run code when
    unpickled beyond those statistics functions, which the user's own code
    registered."""
    import numpy as np
    from mmengine.logging import HistoryBuffer

    allowed = [HistoryBuffer, np.ndarray, np.dtype, (_history_buffer_method, 'builtins.getattr')]
    allowed += registered_statistics()
    for name in ('numpy.core.multiarray', 'numpy._core.multiarray'):  # numpy 1 / numpy 2 names
        try:
            multiarray = importlib.import_module(name)
        except ImportError:
            continue
        allowed += [multiarray._reconstruct, multiarray.scalar]
    dtype_classes = getattr(np, 'dtypes', None)
    if dtype_classes is not None:
        allowed += [cls for cls in vars(dtype_classes).values()
                    if isinstance(cls, type) and issubclass(cls, np.dtype)]
    return allowed


@contextlib.contextmanager
def allowed_globals(extra: Sequence) -> Iterator[None]:
    """Allow ``extra`` in ``weights_only`` loading inside the block, and leave
    the process's allow-list exactly as it was afterwards.

    ``torch.serialization.safe_globals`` removes on exit every global it was
    given, including those that were allow-listed before the block: one
    converter call in a process would then undo the resume fix
    (:func:`crosscl_mm.compat.fix_weights_only_resume`) for the rest of it.
    """
    before = torch.serialization.get_safe_globals()
    torch.serialization.add_safe_globals(list(extra))
    try:
        yield
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(before)


class RefusedGlobalError(pickle.UnpicklingError):
    """A plain pickle names a global outside :data:`NUMPY_PICKLE_GLOBALS`."""

    def __init__(self, module: str, name: str):
        super().__init__(f'{module}.{name}')
        self.module, self.name = module, name


# What numpy arrays and scalars pickle to, as (module, name): ndarray.__reduce__
# gives _reconstruct + ndarray + dtype (protocols 2-4); __reduce_ex__(5) gives
# _frombuffer; numpy scalars give multiarray.scalar. numpy 2 writes numpy._core
# where numpy 1 writes numpy.core: both spellings resolve to the installed one.
# Python 3 pickles bytes at protocol 2 as _codecs.encode(text, 'latin1') (a
# string to bytes; torch's weights-only unpickler admits it for the same
# reason). collections.OrderedDict is plain data. Nothing else is admitted.
NUMPY_PICKLE_GLOBALS = (
    ('_codecs', 'encode'),
    ('numpy.core.multiarray', '_reconstruct'),
    ('numpy.core.multiarray', 'scalar'),
    ('numpy.core.numeric', '_frombuffer'),
    ('numpy', 'ndarray'),
    ('numpy', 'dtype'),
    ('collections', 'OrderedDict'),
)


def _numpy_pickle_global(module: str, name: str):
    spelled = module.replace('numpy._core', 'numpy.core', 1)
    if (spelled, name) not in NUMPY_PICKLE_GLOBALS:
        raise RefusedGlobalError(module, name)
    for candidate in (spelled, spelled.replace('numpy.core', 'numpy._core', 1)):
        try:
            found = getattr(importlib.import_module(candidate), name, None)
        except ImportError:
            continue
        if found is not None:
            return found
    raise RefusedGlobalError(module, name)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        return _numpy_pickle_global(module, name)


def load_numpy_pickle(fileobj):
    """Unpickle plain data and numpy arrays only (a detectron2 ``.pkl``:
    ``{'model': {name: ndarray}, '__author__': ..., 'matching_heuristics': ...}``).

    ``find_class`` admits exactly :data:`NUMPY_PICKLE_GLOBALS`; any other
    global (``os.system``, a class with ``__reduce__``) raises
    :class:`RefusedGlobalError` before it is called. Arrays of Python objects
    are refused too (their elements could only be plain data here, but a
    state dict has no use for them). ``encoding='latin1'`` reads numpy arrays
    pickled by Python 2, as detectron2's own loader does
    (detectron2/checkpoint/detection_checkpoint.py).
    """
    import numpy as np
    obj = _NumpyOnlyUnpickler(fileobj, encoding='latin1').load()
    pending = [obj]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, (list, tuple)):
            pending.extend(value)
        elif isinstance(value, np.ndarray) and value.dtype.hasobject:
            raise pickle.UnpicklingError('an array of Python objects (dtype object)')
    return obj
