"""Each fix in crosscl_mm/compat.py: the upstream failure without it (in a
subprocess with the fix disabled) and the working behaviour with it."""
import tempfile
import textwrap

import pytest

from conftest import SELFSUP_PACKAGE, only_with, free_port, python_cmd, run
from crosscl_mm.utils.stack import baseline_config


def run_snippet(code, disable=None, env=None):
    full_env = dict(env or {})
    if disable:
        full_env['CROSSCL_MM_NO_COMPAT'] = disable
    # The snippets write their files under tempfile's folder: a folder of their own, removed after.
    with tempfile.TemporaryDirectory() as folder:
        full_env['TMPDIR'] = folder
        return run(python_cmd('-c', textwrap.dedent(code)), env=full_env, check=False,
                   timeout=300)


REGISTRY_SNIPPET = """
    import crosscl_mm
    from mmselfsup.registry import LOOPS
    print('found', LOOPS.get('EpochBasedTrainLoop').__name__)
"""


@only_with('mmselfsup')
def test_mmselfsup_registry_locations():
    broken = run_snippet(REGISTRY_SNIPPET, disable='mmselfsup_registry_locations')
    assert broken.returncode != 0 and "No module named 'mmselfsup.engine.runner'" in broken.stderr
    fixed = run_snippet(REGISTRY_SNIPPET)
    assert fixed.returncode == 0, fixed.stderr
    assert 'found EpochBasedTrainLoop' in fixed.stdout


CPU_DIST_SNIPPET = """
    import torch, crosscl_mm
    from mmengine.dist import init_dist, get_world_size
    from mmengine.model import MMDistributedDataParallel
    init_dist('pytorch', backend='nccl')
    print('backend', torch.distributed.get_backend(), 'world', get_world_size())
    ddp = MMDistributedDataParallel(module=torch.nn.Linear(2, 2), device_ids=[0])
    print('wrapped', type(ddp).__name__, ddp.device_ids)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.SyncBatchNorm(4))
    out = MMDistributedDataParallel(module=net, device_ids=[0])(torch.randn(2, 3, 4, 4))
    print('syncbn forward', tuple(out.shape))
"""


def test_cpu_distributed():
    env = dict(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1',
               MASTER_PORT=str(free_port()), CUDA_VISIBLE_DEVICES='')
    broken = run_snippet(CPU_DIST_SNIPPET, disable='cpu_distributed', env=env)
    assert broken.returncode != 0
    fixed = run_snippet(CPU_DIST_SNIPPET, env=env)
    assert fixed.returncode == 0, fixed.stderr
    assert 'backend gloo world 1' in fixed.stdout
    assert 'wrapped MMDistributedDataParallel None' in fixed.stdout
    assert 'syncbn forward (2, 4, 4, 4)' in fixed.stdout


WEIGHTS_ONLY_SNIPPET = """
    import os, sys, tempfile, pickle, numpy as np, torch
    import crosscl_mm
    from mmengine.logging import MessageHub
    from mmengine.runner.checkpoint import _load_checkpoint
    hub = MessageHub.get_instance('t')
    hub.update_scalar('train/loss', np.float64(1.5))
    hub.update_info('mst_view_size', 224)
    path = os.path.join(tempfile.mkdtemp(), 'ckpt.pth')
    torch.save({'state_dict': {'w': torch.ones(2)}, 'message_hub': hub.state_dict(),
                'meta': {'seed': np.int64(3)}}, path)
    ckpt = _load_checkpoint(path, map_location='cpu')
    print('resumed', float(ckpt['message_hub']['log_scalars']['train/loss'].current()))

    class Evil:
        def __reduce__(self):
            return (os.system, ('echo PWNED',))
    evil = os.path.join(tempfile.mkdtemp(), 'evil.pth')
    torch.save({'state_dict': {}, 'x': Evil()}, evil)
    try:
        _load_checkpoint(evil, map_location='cpu')
    except pickle.UnpicklingError:
        print('refused evil')

    # getattr is allowed only for HistoryBuffer's own statistics functions.
    from mmengine.logging import HistoryBuffer
    class Sneaky:
        def __reduce__(self):
            return (getattr, (HistoryBuffer, '__init__'))
    sneaky = os.path.join(tempfile.mkdtemp(), 'sneaky.pth')
    torch.save({'x': Sneaky()}, sneaky)
    try:
        _load_checkpoint(sneaky, map_location='cpu')
    except pickle.UnpicklingError as exc:
        print('refused sneaky getattr')
"""


def test_weights_only_resume():
    broken = run_snippet(WEIGHTS_ONLY_SNIPPET, disable='weights_only_resume')
    assert broken.returncode != 0 and 'UnpicklingError' in broken.stderr
    fixed = run_snippet(WEIGHTS_ONLY_SNIPPET)
    assert fixed.returncode == 0, fixed.stderr
    assert 'resumed 1.5' in fixed.stdout
    assert 'refused evil' in fixed.stdout and 'PWNED' not in fixed.stdout
    assert 'refused sneaky getattr' in fixed.stdout



def test_safe_checkpoint_loading_leaves_the_resume_allow_list_in_place(tmp_path):
    """torch.serialization.safe_globals removes on exit every global it was
    given, also those the resume fix had allowed for the whole process: after
    one converter-style load, mmengine's resume (a plain torch.load) refused
    HistoryBuffer. Our loaders restore the allow-list as they found it."""
    import numpy as np
    import torch
    from mmengine.logging import HistoryBuffer

    import crosscl_mm  # noqa: F401  (the resume fix)
    from crosscl_mm.converters import load_checkpoint_safely
    from crosscl_mm.utils.safe_unpickling import allowed_globals
    path = tmp_path / 'run.pth'
    torch.save({'state_dict': {'w': torch.ones(2)},
                'message_hub': {'loss': HistoryBuffer([np.float64(1.5)], [np.int64(1)])}}, path)
    before = set(torch.serialization.get_safe_globals())
    assert HistoryBuffer in before
    load_checkpoint_safely(str(path))
    with allowed_globals([HistoryBuffer, tuple]):
        pass
    assert set(torch.serialization.get_safe_globals()) == before
    assert torch.load(path)['message_hub']['loss'].current() == 1.5  # what resume does


COLLATE_SNIPPET = """
    import sys, torch, crosscl_mm
    from mmengine.config import Config
    from mmengine.runner import Runner
    cfg = Config.fromstring(f"_base_ = '{sys.argv[2]}'", file_format='.py')
    loader_cfg = cfg.train_dataloader
    print('scope in collate_fn:', loader_cfg.collate_fn.get('_scope_'))
    loader_cfg.dataset = dict(type='crosscl_mm.UnlabeledImageFolder', data_root=sys.argv[1],
                              pipeline=[])
    loader_cfg.num_workers = 0
    loader_cfg.batch_size = 2
    loader_cfg.persistent_workers = False
    loader = Runner.build_dataloader(loader_cfg)
    batch = next(iter(loader))
    print('collated', len(batch))
"""


def test_collate_fn_scope(photo_dir):
    """With the environment's own DenseCL config (mmselfsup's or mmpretrain's)."""
    code = textwrap.dedent(COLLATE_SNIPPET)
    base = baseline_config('densecl')
    broken = run(python_cmd('-c', code, photo_dir, base), check=False,
                 env=dict(CROSSCL_MM_NO_COMPAT='collate_fn_scope'))
    assert f'scope in collate_fn: {SELFSUP_PACKAGE}' in broken.stdout
    assert broken.returncode != 0 and '_scope_' in broken.stderr
    fixed = run(python_cmd('-c', code, photo_dir, base), check=False)
    assert fixed.returncode == 0, fixed.stderr
    assert 'collated' in fixed.stdout


def test_import_applies_fixes_and_imports_the_stack():
    out = run_snippet(f"""
        import crosscl_mm, {SELFSUP_PACKAGE}, mmdet
        from mmcv.ops import roi_align
        print(sorted(k for k, v in crosscl_mm.compat.APPLIED.items() if v))
        print(crosscl_mm.EXPORTED_SCOPES)
    """)
    assert out.returncode == 0, out.stderr
    applied = ['atomic_local_writes', 'collate_fn_scope', 'cpu_distributed',
               'mmselfsup_registry_locations', 'weights_only_resume']
    if SELFSUP_PACKAGE != 'mmselfsup':  # nothing to mend where mmselfsup is absent
        applied.remove('mmselfsup_registry_locations')
    assert str(applied) in out.stdout
    assert f"['{SELFSUP_PACKAGE}']" in out.stdout


def test_our_registry_locations_all_import():
    import importlib
    import crosscl_mm.registry as reg
    from mmengine.registry import Registry
    for name in dir(reg):
        obj = getattr(reg, name)
        if isinstance(obj, Registry):
            for loc in obj._locations:
                importlib.import_module(loc)


ATOMIC_SNIPPET = """
    import os, sys, tempfile
    import crosscl_mm
    from mmengine.fileio.backends import LocalBackend
    folder = tempfile.mkdtemp()
    path = os.path.join(folder, 'epoch_1.pth')
    LocalBackend().put(b'good checkpoint', path)
    try:
        LocalBackend().put(None, path)  # the write fails half way (after opening the file)
    except TypeError:
        pass
    print('content', open(path, 'rb').read())
    print('leftovers', sorted(os.listdir(folder)))
    # What a plain open() gives: the umask's mode, a replaced file's mode, symlinks followed.
    os.umask(0o027)
    with open(os.path.join(folder, 'plain'), 'wb') as f:
        f.write(b'x')
    LocalBackend().put(b'x', os.path.join(folder, 'new.pth'))
    LocalBackend().put_text('x', os.path.join(folder, 'new.json'))
    print('modes', [oct(os.stat(os.path.join(folder, n)).st_mode & 0o777)
                    for n in ('plain', 'new.pth', 'new.json')])
    os.symlink(os.path.join(folder, 'plain'), os.path.join(folder, 'link'))
    os.chmod(os.path.join(folder, 'plain'), 0o604)
    LocalBackend().put(b'through the link', os.path.join(folder, 'link'))
    print('link', os.path.islink(os.path.join(folder, 'link')),
          open(os.path.join(folder, 'plain'), 'rb').read(),
          oct(os.stat(os.path.join(folder, 'plain')).st_mode & 0o777))
"""


def test_atomic_local_writes():
    broken = run_snippet(ATOMIC_SNIPPET, disable='atomic_local_writes')
    assert broken.returncode == 0 and "content b''" in broken.stdout  # the good file is gone
    fixed = run_snippet(ATOMIC_SNIPPET)
    assert fixed.returncode == 0, fixed.stderr
    assert "content b'good checkpoint'" in fixed.stdout
    assert "leftovers ['epoch_1.pth']" in fixed.stdout
    # Nothing else changes: modes and links as mmengine's own plain open() gives them.
    for proc in (broken, fixed):
        assert "modes ['0o640', '0o640', '0o640']" in proc.stdout, proc.stdout
        assert "link True b'through the link' 0o604" in proc.stdout, proc.stdout


LAST_CHECKPOINT_SNIPPET = """
    import errno, os, resource, signal, tempfile
    import torch
    import crosscl_mm
    from mmengine.model import BaseModel
    from mmengine.runner import Runner
    from mmengine.runner.checkpoint import find_latest_checkpoint

    class Toy(BaseModel):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(2, 1)

        def forward(self, inputs, data_samples=None, mode='tensor'):
            return dict(loss=self.linear(inputs).pow(2).mean())

    work_dir = tempfile.mkdtemp()
    runner = Runner(
        model=Toy(), work_dir=work_dir,
        train_dataloader=dict(dataset=[dict(inputs=torch.ones(2))] * 4, batch_size=2,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=True, max_epochs=2),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)))

    # The disk fills up once epoch_2.pth is saved, while the pointer is written.
    save = runner.save_checkpoint
    def save_then_disk_full(*args, **kwargs):
        save(*args, **kwargs)
        if runner.epoch == 1:
            resource.setrlimit(resource.RLIMIT_FSIZE, (8, resource.RLIM_INFINITY))
    runner.save_checkpoint = save_then_disk_full
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        runner.train()
    except OSError as exc:
        print('save failed', errno.errorcode[exc.errno])
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    pointed = find_latest_checkpoint(work_dir)
    print('points to', os.path.basename(pointed), 'resumable', os.path.isfile(pointed))
"""


def test_atomic_last_checkpoint_pointer():
    """mmengine's CheckpointHook writes `last_checkpoint` (what --resume reads
    first) with a plain open(): a failure while writing it leaves a torn
    pointer and the run cannot resume; written atomically, the pointer still
    names the previous, complete checkpoint."""
    broken = run_snippet(LAST_CHECKPOINT_SNIPPET, disable='atomic_local_writes')
    assert 'save failed EFBIG' in broken.stdout, broken.stdout + broken.stderr
    assert 'resumable False' in broken.stdout
    fixed = run_snippet(LAST_CHECKPOINT_SNIPPET)
    assert 'save failed EFBIG' in fixed.stdout, fixed.stdout + fixed.stderr
    assert 'points to epoch_1.pth resumable True' in fixed.stdout


USER_STATISTICS = """
import numpy as np
from mmengine.logging import HistoryBuffer


def weighted_mean(self, window_size, weight):
    values = self._log_history[-window_size:] * np.array(weight)
    return values.sum() / self._count_history[-window_size:].sum()


def register():
    HistoryBuffer.register_statistics(weighted_mean)
"""

CUSTOM_STATISTICS_SNIPPET = """
    import os, pickle, sys
    import torch
    import crosscl_mm
    import user_statistics  # the user's code, imported after crosscl_mm
    from mmengine.logging import MessageHub
    from mmengine.runner.checkpoint import _load_checkpoint
    path, register = sys.argv[1], sys.argv[2] == 'register'
    if register:
        user_statistics.register()
    if not os.path.exists(path):
        hub = MessageHub.get_instance('run')
        for value in (1.0, 2.0, 4.0):
            hub.update_scalar('train/loss', value)
        torch.save({'state_dict': {'w': torch.ones(2)}, 'message_hub': hub.state_dict()}, path)
    try:
        ckpt = _load_checkpoint(path, map_location='cpu')
    except pickle.UnpicklingError as exc:
        print('refused:', [line for line in str(exc).splitlines() if 'GLOBAL' in line])
    else:
        loss = ckpt['message_hub']['log_scalars']['train/loss']
        print('resumed', loss.statistics('weighted_mean', 2, [1, 3]))
"""


def test_weights_only_resume_accepts_statistics_registered_by_this_process(tmp_path):
    """A run whose code registers a HistoryBuffer statistic (as mmengine's own
    tests do) pickles it in every checkpoint's message hub: it resumes where
    the same code has registered it again, and only there (the fix's failure
    without it is test_weights_only_resume's)."""
    (tmp_path / 'user_statistics.py').write_text(USER_STATISTICS)
    code = textwrap.dedent(CUSTOM_STATISTICS_SNIPPET)
    env = dict(PYTHONPATH=str(tmp_path))
    ckpt = str(tmp_path / 'epoch_1.pth')
    fixed = run(python_cmd('-c', code, ckpt, 'register'), check=False, env=env)
    assert 'resumed 7.0' in fixed.stdout, fixed.stdout + fixed.stderr  # (1 * 2 + 3 * 4) / 2
    unregistered = run(python_cmd('-c', code, ckpt, 'no'), check=False, env=env)
    assert 'refused' in unregistered.stdout, unregistered.stdout + unregistered.stderr
    assert 'GLOBAL user_statistics.weighted_mean' in unregistered.stdout



def lvis_perfect_detection_ap(tmp_path):
    """The LVIS API's bbox AP of one exact detection of one box."""
    import json
    from lvis import LVIS, LVISEval, LVISResults
    gt = dict(images=[dict(id=1, width=20, height=20, neg_category_ids=[],
                           not_exhaustive_category_ids=[])],
              categories=[dict(id=1, name='a', frequency='f')],
              annotations=[dict(id=1, image_id=1, category_id=1, bbox=[2, 2, 10, 10], area=100,
                                segmentation=[[2, 2, 12, 2, 12, 12, 2, 12]])])
    path = tmp_path / 'gt.json'
    path.write_text(json.dumps(gt))
    lvis = LVIS(str(path))
    dt = LVISResults(lvis, [dict(image_id=1, category_id=1, bbox=[2, 2, 10, 10], score=0.9)])
    evaluation = LVISEval(lvis, dt, 'bbox')
    evaluation.run()
    return evaluation.get_results()['AP']


def test_lvis_numpy_float(tmp_path, monkeypatch):
    """lvis 0.5.3's LVISEval.accumulate fails under numpy >= 1.24
    (lvis-dataset/lvis-api#37); with the fix a perfect detection scores AP 1.
    Importing the module of the LVIS configs' dataset applies it; numpy itself
    keeps no ``float``."""
    import numpy
    import crosscl_mm.datasets.coco  # noqa: F401
    from crosscl_mm.compat import APPLIED, apply_deferred, fix_lvis_numpy_float
    import lvis.eval
    assert APPLIED['lvis_numpy_float'] is True
    assert lvis.eval.np.float is float and lvis.eval.np.cumsum is numpy.cumsum
    assert not hasattr(numpy, 'float')
    assert lvis_perfect_detection_ap(tmp_path) == pytest.approx(1.0)
    # without it (CROSSCL_MM_NO_COMPAT names it): the upstream failure
    monkeypatch.setattr(lvis.eval, 'np', numpy)
    monkeypatch.setenv('CROSSCL_MM_NO_COMPAT', 'lvis_numpy_float')
    APPLIED.pop('lvis_numpy_float')
    assert apply_deferred(fix_lvis_numpy_float) is False and lvis.eval.np is numpy
    with pytest.raises(AttributeError, match="module 'numpy' has no attribute 'float'"):
        lvis_perfect_detection_ap(tmp_path)
    monkeypatch.delenv('CROSSCL_MM_NO_COMPAT')
    assert apply_deferred(fix_lvis_numpy_float) is True
    assert lvis_perfect_detection_ap(tmp_path) == pytest.approx(1.0)
