"""Fixes for third-party bugs of the 2026 OpenMMLab stack, in one place.

:func:`apply_all` runs on ``import crosscl_mm``. Every fix first checks that
the broken behaviour is really there, so it turns into a no-op once upstream
is fixed; :data:`APPLIED` records which fixes were needed in this process.
Each fix has a test in ``tests/test_compat.py`` that fails without it.
"""
import functools
import importlib
import importlib.util
import inspect
import io
import os
import pickle
import re
import types
from typing import Dict

import torch

from crosscl_mm.utils.safe_unpickling import (allowed_globals, mmengine_checkpoint_globals,
                                              registered_statistics)

APPLIED: Dict[str, bool] = {}


def _record(name: str, applied: bool) -> bool:
    APPLIED[name] = applied
    return applied


def fix_mmselfsup_registry_locations() -> bool:
    """mmselfsup 1.0.0's RUNNERS, RUNNER_CONSTRUCTORS and LOOPS list the
    location ``mmselfsup.engine.runner``, which the release does not contain
    (open-mmlab/mmselfsup#745); building any loop in scope ``mmselfsup`` then
    raises ModuleNotFoundError. Locations that do not exist are removed.
    """
    if importlib.util.find_spec('mmselfsup') is None:
        return _record('mmselfsup_registry_locations', False)
    registry = importlib.import_module('mmselfsup.registry')
    changed = False
    for name in ('RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS'):
        reg = getattr(registry, name)
        existing = [loc for loc in reg._locations if _module_exists(loc)]
        if existing != list(reg._locations):
            reg._locations = existing
            changed = True
    return _record('mmselfsup_registry_locations', changed)


def _module_exists(name: str) -> bool:
    """Whether ``a.b.c`` exists, found on disk from the top-level package
    without importing ``a.b`` (importing mmselfsup.engine pulls in mmdet)."""
    top, *parts = name.split('.')
    spec = importlib.util.find_spec(top)
    if spec is None:
        return False
    if not parts:
        return True
    return any(os.path.isdir(os.path.join(root, *parts))
               or os.path.isfile(os.path.join(root, *parts[:-1], parts[-1] + '.py'))
               for root in spec.submodule_search_locations or [])


def fix_cpu_distributed() -> bool:
    """Distributed training without CUDA.

    mmengine 0.10.7's ``_init_dist_pytorch`` calls ``torch.cuda.set_device``
    unconditionally and uses the configured backend (``nccl`` in every
    OpenMMLab config), and the Runner wraps the model in DDP with
    ``device_ids=[LOCAL_RANK]``, which DDP refuses for a CPU module (we found
    no mmengine issue for it; the DDP error is the one in pytorch/pytorch#46821
    and facebookresearch/detectron2#5146). Without CUDA the process group is
    initialised with gloo, the CPU module is wrapped without ``device_ids``, and
    SyncBatchNorm (no CPU kernel) becomes per-process BatchNorm; with CUDA
    nothing changes.
    """
    import mmengine.dist.utils as dist_utils
    from mmengine.model import MMDistributedDataParallel

    applied = False
    original_init = dist_utils._init_dist_pytorch
    source = inspect.getsource(original_init)
    unguarded = 'torch.cuda.set_device(local_rank)' in source and 'is_available()' not in source
    if unguarded and not getattr(original_init, '_crosscl_mm_patched', False):
        @functools.wraps(original_init)
        def _init_dist_pytorch(backend, init_backend='torch', **kwargs):
            if torch.cuda.is_available():
                return original_init(backend, init_backend=init_backend, **kwargs)
            torch.distributed.init_process_group(
                backend='gloo' if backend in (None, 'nccl') else backend,
                rank=int(os.environ['RANK']), world_size=int(os.environ['WORLD_SIZE']), **kwargs)

        _init_dist_pytorch._crosscl_mm_patched = True
        dist_utils._init_dist_pytorch = _init_dist_pytorch
        applied = True

    ddp_init = MMDistributedDataParallel.__init__
    if not getattr(ddp_init, '_crosscl_mm_patched', False):
        @functools.wraps(ddp_init)
        def __init__(self, module, detect_anomalous_params=False, **kwargs):
            params = list(module.parameters())
            on_cpu = bool(params) and all(p.device.type == 'cpu' for p in params)
            if on_cpu and kwargs.get('device_ids') is not None:
                kwargs['device_ids'] = None  # DDP: device_ids must be None for CPU modules
            if on_cpu and any(isinstance(m, torch.nn.SyncBatchNorm) for m in module.modules()):
                # SyncBatchNorm has no CPU kernel ("SyncBatchNorm expected input tensor
                # to be on GPU"): CPU runs normalise per process instead.
                from mmengine.logging import print_log
                from mmengine.model import revert_sync_batchnorm
                print_log('crosscl_mm.compat: SyncBatchNorm -> BatchNorm for a CPU '
                          'distributed run (statistics are per process)', logger='current',
                          level=30)
                module = revert_sync_batchnorm(module)
            ddp_init(self, module, detect_anomalous_params=detect_anomalous_params, **kwargs)

        __init__._crosscl_mm_patched = True
        MMDistributedDataParallel.__init__ = __init__
        applied = True
    return _record('cpu_distributed', applied)


def _weights_only_rejects_mmengine_checkpoints() -> bool:
    import numpy as np
    from mmengine.logging import HistoryBuffer

    buf = io.BytesIO()
    torch.save({'log': HistoryBuffer([np.float64(1.0)], [np.int64(1)])}, buf)
    buf.seek(0)
    try:
        torch.load(buf)
    except pickle.UnpicklingError:
        return True
    return False


def fix_weights_only_resume() -> bool:
    """torch >= 2.6 loads with ``weights_only=True`` by default, and
    mmengine 0.10.7 resumes with a plain ``torch.load``, which then refuses
    the HistoryBuffer and numpy objects of the checkpoint's message hub
    (upstream: open-mmlab/mmengine#1655, open PR #1650). Those types, and only those, are
    allow-listed; loading stays safe, and ``weights_only=False`` is never
    used. Custom statistics (``HistoryBuffer.register_statistics``), which
    every HistoryBuffer of such a run pickles, are allowed while mmengine
    loads a checkpoint if this process has registered them by then
    (:func:`~crosscl_mm.utils.safe_unpickling.registered_statistics`).
    """
    if not hasattr(torch.serialization, 'add_safe_globals'):
        return _record('weights_only_resume', False)
    if not _weights_only_rejects_mmengine_checkpoints():
        return _record('weights_only_resume', False)
    torch.serialization.add_safe_globals(mmengine_checkpoint_globals())

    from mmengine.runner.checkpoint import CheckpointLoader
    load = CheckpointLoader.load_checkpoint.__func__
    if not getattr(load, '_crosscl_mm_patched', False):
        @functools.wraps(load)
        def load_checkpoint(cls, *args, **kwargs):
            # Registered now, not at import: user code registers after `import crosscl_mm`.
            with allowed_globals(registered_statistics()):
                return load(cls, *args, **kwargs)

        load_checkpoint._crosscl_mm_patched = True
        CheckpointLoader.load_checkpoint = classmethod(load_checkpoint)
    return _record('weights_only_resume', True)


def fix_collate_fn_scope() -> bool:
    """A config that inherits from another package (``_base_ =
    'mmselfsup::...'``) gets ``_scope_`` injected into every dict with a
    ``type``, ``train_dataloader.collate_fn`` included; mmengine 0.10.7 then
    passes it on as ``default_collate(_scope_=...)`` and fails with a
    TypeError. The key is dropped before the collate function is built
    (the registry finds ``default_collate`` from any scope).
    """
    from mmengine.runner import Runner

    build = Runner.build_dataloader
    if '_scope_' in inspect.getsource(build) or getattr(build, '_crosscl_mm_patched', False):
        return _record('collate_fn_scope', False)

    @functools.wraps(build)
    def build_dataloader(dataloader, *args, **kwargs):
        if isinstance(dataloader, dict) and isinstance(dataloader.get('collate_fn'), dict) \
                and '_scope_' in dataloader['collate_fn']:
            dataloader = dict(dataloader)
            dataloader['collate_fn'] = {k: v for k, v in dataloader['collate_fn'].items()
                                        if k != '_scope_'}
        return build(dataloader, *args, **kwargs)

    build_dataloader._crosscl_mm_patched = True
    Runner.build_dataloader = staticmethod(build_dataloader)
    return _record('collate_fn_scope', True)


def fix_atomic_local_writes() -> bool:
    """mmengine 0.10.7 writes files in place, so a run killed (or out of disk)
    while saving leaves a truncated file where the good one was (we found no
    upstream issue for it):

    - ``LocalBackend.put``/``put_text``, through which ``epoch_N.pth`` and
      every other local file of the runner is written;
    - the ``last_checkpoint`` pointer that ``--resume`` reads first, written
      by ``CheckpointHook._save_checkpoint_with_step`` with a plain
      ``open(save_file, 'w')``.

    Both now go through :func:`crosscl_mm.utils.files.open_atomically`: a
    temporary file beside the target, renamed over it. Nothing else changes:
    files get the mode ``open()`` would give them, and symbolic links are
    written through.
    """
    from mmengine.fileio.backends import LocalBackend
    from mmengine.hooks import checkpoint_hook

    from crosscl_mm.utils.files import open_atomically

    applied = False
    put, put_text = LocalBackend.put, LocalBackend.put_text
    if 'os.replace' not in inspect.getsource(put) and \
            not getattr(put, '_crosscl_mm_patched', False):
        @functools.wraps(put)
        def atomic_put(self, obj, filepath):
            with open_atomically(str(filepath), 'wb') as f:
                f.write(obj)

        @functools.wraps(put_text)
        def atomic_put_text(self, obj, filepath, encoding='utf-8'):
            with open_atomically(str(filepath), 'w', encoding=encoding) as f:
                f.write(obj)

        atomic_put._crosscl_mm_patched = True
        LocalBackend.put, LocalBackend.put_text = atomic_put, atomic_put_text
        applied = True

    # The pointer is written inline in a long method; rather than copy the
    # method, the module's `open` (its only use, a `with` block writing
    # last_checkpoint) resolves to one that writes atomically.
    save_step = inspect.getsource(checkpoint_hook.CheckpointHook._save_checkpoint_with_step)
    if "with open(save_file, 'w') as f" in save_step and 'open' not in vars(checkpoint_hook):
        def open_writes_atomically(file, mode='r', *args, **kwargs):
            if 'w' in mode:
                return open_atomically(file, mode, *args, **kwargs)
            return open(file, mode, *args, **kwargs)

        checkpoint_hook.open = open_writes_atomically
        applied = True
    return _record('atomic_local_writes', applied)


FIXES = (fix_mmselfsup_registry_locations, fix_cpu_distributed, fix_weights_only_resume,
         fix_collate_fn_scope, fix_atomic_local_writes)


def apply_all() -> Dict[str, bool]:
    """Apply every fix whose broken condition is present. Set
    ``CROSSCL_MM_NO_COMPAT=name1,name2`` (or ``all``) to skip fixes, which
    the tests use to show each upstream failure."""
    skip = {s.strip() for s in os.environ.get('CROSSCL_MM_NO_COMPAT', '').split(',') if s.strip()}
    for fix in FIXES:
        name = fix.__name__[len('fix_'):]
        if 'all' in skip or name in skip:
            APPLIED.setdefault(name, False)
            continue
        fix()
    return dict(APPLIED)


class _NumpyWithFloatAlias(types.ModuleType):
    """numpy, plus the alias ``float`` (the builtin) that numpy 1.24 removed."""
    float = float

    def __getattr__(self, name):
        import numpy
        return getattr(numpy, name)


def fix_lvis_numpy_float() -> bool:
    """lvis 0.5.3, the latest release of the LVIS API (which mmdet's
    LVISV1Dataset and LVISMetric use), calls ``astype(dtype=np.float)`` in
    ``LVISEval.accumulate``; numpy 1.24 removed that alias, so every LVIS
    evaluation ends in ``AttributeError: module 'numpy' has no attribute
    'float'`` (lvis-dataset/lvis-api#37, fixed on its main branch by #42 but
    not released). lvis.eval's ``np`` becomes numpy with ``float`` as the
    builtin ``float`` (what the alias was); numpy itself is not changed.

    Importing lvis imports matplotlib and OpenCV, so this fix is not applied
    on ``import crosscl_mm``; crosscl_mm.datasets.coco, which the LVIS
    configs' dataset lives in, applies it with :func:`apply_deferred`.
    """
    import numpy
    if importlib.util.find_spec('lvis') is None or hasattr(numpy, 'float'):
        return _record('lvis_numpy_float', False)
    lvis_eval = importlib.import_module('lvis.eval')
    if isinstance(lvis_eval.np, _NumpyWithFloatAlias):
        return _record('lvis_numpy_float', True)
    if not re.search(r'np\.float\b(?![0-9_])', inspect.getsource(lvis_eval)):
        return _record('lvis_numpy_float', False)
    lvis_eval.np = _NumpyWithFloatAlias('numpy')
    return _record('lvis_numpy_float', True)


def apply_deferred(fix) -> bool:
    """Apply one fix that is not in :data:`FIXES` (its package is slow to
    import), unless ``CROSSCL_MM_NO_COMPAT`` names it (or ``all``)."""
    name = fix.__name__[len('fix_'):]
    skip = {s.strip() for s in os.environ.get('CROSSCL_MM_NO_COMPAT', '').split(',') if s.strip()}
    if 'all' in skip or name in skip:
        return APPLIED.setdefault(name, False)
    return fix()
