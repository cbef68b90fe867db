"""No host synchronisation in our part of a training iteration, reviewed on
the CPU: every aten op that reads a device value back to the host on a GPU
(``.item()``, ``float()``, ``bool()``, ``nonzero``, boolean indexing, ...) and
every ``tolist``/``numpy``/``cpu`` call is recorded with the Python stack that
issued it, during real mmengine training iterations of CrossCL."""
import os.path as osp
import traceback

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from conftest import REPO, TEST_CONFIGS

PACKAGE = osp.join(REPO, 'crosscl_mm') + osp.sep
# Ops that need a device value on the host (CUDA synchronises for them).
SYNCING_OPS = {'_local_scalar_dense', 'nonzero', 'masked_select', 'unique', '_unique',
               '_unique2', 'unique_dim', 'unique_consecutive', 'equal', 'is_nonzero',
               'bincount', 'histc', 'masked_scatter'}
BOOL_INDEXED_OPS = {'index', 'index_put', 'index_put_', '_index_put_impl_'}
READ_BACK_METHODS = ('tolist', 'numpy', 'cpu', 'item')


class SyncRecorder(TorchDispatchMode):
    """Records (iteration, what, files on the stack) while ``active``."""

    def __init__(self):
        super().__init__()
        self.active, self.iteration, self.events = False, 0, []
        self._saved = {}

    def record(self, what):
        if self.active:
            files = [frame.filename for frame in traceback.extract_stack()]
            self.events.append((self.iteration, what, files))

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name in SYNCING_OPS:
            self.record(name)
        elif name in BOOL_INDEXED_OPS and any(
                isinstance(i, torch.Tensor) and i.dtype == torch.bool
                for a in args if isinstance(a, (list, tuple)) for i in a):
            self.record(f'{name} with a boolean mask')
        return func(*args, **(kwargs or {}))

    def __enter__(self):
        # tolist/numpy read CPU tensors directly, without an aten op: wrap them.
        for method in READ_BACK_METHODS:
            original = self._saved[method] = getattr(torch.Tensor, method)

            def wrapped(tensor, *a, _original=original, _method=method, **k):
                self.record(f'Tensor.{_method}')
                return _original(tensor, *a, **k)
            setattr(torch.Tensor, method, wrapped)
        return super().__enter__()

    def __exit__(self, *exc):
        for method, original in self._saved.items():
            setattr(torch.Tensor, method, original)
        return super().__exit__(*exc)


def from_our_package(files):
    return any(f.startswith(PACKAGE) for f in files)


def test_a_training_iteration_reads_back_only_mmengine_logs_and_our_hook_at_its_interval(
        photo_dir, tmp_path):
    """Four iterations of the tiny CrossCL run in mmengine's Runner, logger
    interval 2. From before_train_iter (first hook) to after_train_iter (last
    hook) — data preprocessing, CrossCL.loss, backward, SGD, every hook —
    nothing under crosscl_mm/ reads a value back except FiniteLossHook, once,
    at iterations 2 and 4. mmengine's RuntimeInfoHook reads every logged value
    back every iteration (MessageHub.update_scalar calls .item()), which also
    shows the recorder sees what it should."""
    from mmengine.config import Config
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    cfg = Config.fromfile(osp.join(TEST_CONFIGS, 'crosscl_r18_tiny.py'))
    cfg.work_dir = str(tmp_path / 'sync')
    cfg.train_dataloader.dataset.data_root = photo_dir
    cfg.default_hooks.logger.interval = 2
    cfg.default_hooks.checkpoint.interval = 10  # no checkpoint: not part of an iteration
    recorder = SyncRecorder()

    class Open(Hook):
        def before_train_iter(self, runner, batch_idx, data_batch=None):
            recorder.iteration, recorder.active = runner.iter + 1, True

    class Close(Hook):
        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            recorder.active = False

    runner = Runner.from_cfg(cfg)
    runner.register_hook(Open(), priority='HIGHEST')
    runner.register_hook(Close(), priority='LOWEST')
    with recorder:
        runner.train()

    iterations = sorted({it for it, _, _ in recorder.events})
    assert iterations == [1, 2, 3, 4]
    ours = [(it, what, [f for f in files if f.startswith(PACKAGE)])
            for it, what, files in recorder.events if from_our_package(files)]
    hook_file = osp.join(PACKAGE, 'engine', 'hooks', 'finite_loss.py')
    assert [(it, what) for it, what, _ in ours] == [(2, 'Tensor.tolist'), (4, 'Tensor.tolist')], ours
    assert all(files[-1] == hook_file for _, _, files in ours)
    logging = [(it, files) for it, what, files in recorder.events if not from_our_package(files)
               and any('mmengine/logging/message_hub.py' in f for f in files)]
    for it in (1, 2, 3, 4):  # at least the six losses each iteration
        assert sum(1 for i, _ in logging if i == it) >= 6


def test_momentum_encoder_matches_mmengine_ema_exactly_without_reading_back():
    """MomentumEncoder against mmengine's ExponentialMovingAverage (the
    reference semantics: copy at the first update, lerp after, buffers
    copied) over five updates, across a save and load in the middle; mmengine's
    reads its step counter back, ours reads nothing back."""
    from mmengine.model import ExponentialMovingAverage
    from crosscl_mm.models.utils import MomentumEncoder

    torch.manual_seed(0)
    online = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                                 torch.nn.Linear(4, 2))
    reference = ExponentialMovingAverage(online, momentum=0.01)
    ours = MomentumEncoder(online, momentum=0.01)
    with torch.no_grad():
        for p in online.parameters():  # the online model moves before the first update
            p.add_(torch.randn_like(p))
    recorder = SyncRecorder()
    for step in range(5):
        if step == 3:  # resume: a fresh encoder loads the state of step 3
            state = ours.state_dict()
            ours = MomentumEncoder(torch.nn.Sequential(
                torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(4, 2)), 0.01)
            ours.load_state_dict(state)
        online[1].running_mean.add_(1.0)
        reference.update_parameters(online)
        recorder.active = True
        with recorder:
            ours.update_parameters(online)
        recorder.active = False
        with torch.no_grad():
            for p in online.parameters():
                p.add_(torch.randn_like(p))
        for (name, a), b in zip(reference.state_dict().items(), ours.state_dict().values()):
            assert torch.equal(a, b), (step, name)
    assert recorder.events == []
    recorder.active = True
    with recorder:
        reference.update_parameters(online)
    assert [what for _, what, _ in recorder.events] == ['_local_scalar_dense'] * 2
