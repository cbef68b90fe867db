"""What a checkpoint may unpickle besides tensors: the allow-list that keeps
``weights_only=True`` loading safe for mmengine training checkpoints. Used by
the resume fix (:mod:`crosscl_mm.compat`) and by the converters."""
import importlib
import pickle


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


def mmengine_checkpoint_globals():
    """Every non-tensor type an mmengine training checkpoint pickles: the
    message hub's HistoryBuffer (with its statistics functions) and the numpy
    arrays, scalars and dtypes it holds. Nothing here can run code when
    unpickled."""
    import numpy as np
    from mmengine.logging import HistoryBuffer

    allowed = [HistoryBuffer, np.ndarray, np.dtype, (_history_buffer_method, 'builtins.getattr')]
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
