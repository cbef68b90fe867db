"""Real training runs on real photos: one process through tools/train.py, two
CPU processes over gloo through tools/dist_train.sh, and resume."""
import glob
import math
import os.path as osp

import pytest
import torch

from conftest import DENSECL_TINY, TEST_CONFIGS, free_port, python_cmd, run
from crosscl_mm.utils.work_dir import read_scalars as scalars

LOSSES = ('loss_global', 'loss_p4', 'loss_p3', 'loss_p4_p3', 'loss_p3_p4')


def cfg_options(photo_dir, *extra):
    return ['--cfg-options', f'train_dataloader.dataset.data_root={photo_dir}',
            'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0', *extra]


def dist_train(config, work_dir, *args):
    env = dict(PORT=str(free_port()), PYTHON=python_cmd()[0], OMP_NUM_THREADS='1')
    return run(['bash', 'tools/dist_train.sh', config, '2', '--work-dir', work_dir, *args],
               env=env, timeout=1500)


def test_single_process_train_logs_five_finite_losses(photo_dir, tmp_path):
    work_dir = str(tmp_path / 'single')
    run(python_cmd('tools/train.py', osp.join(TEST_CONFIGS, 'crosscl_r18_tiny.py'),
                   '--work-dir', work_dir, *cfg_options(photo_dir)))
    assert osp.exists(osp.join(work_dir, 'epoch_1.pth'))
    records = [r for r in scalars(work_dir) if 'loss_p4' in r]
    assert len(records) == 4  # 8 photos / batch 2
    for r in records:
        for name in LOSSES:
            assert math.isfinite(r[name]) and r[name] > 0, (name, r)
        assert r['loss'] == pytest.approx(sum(r[n] for n in LOSSES), rel=1e-4)
        assert 0 <= r['acc_p4'] <= 100


def test_two_cpu_processes_then_resume(photo_dir, tmp_path):
    work_dir = str(tmp_path / 'dist')
    config = osp.join(TEST_CONFIGS, 'crosscl_r18_tiny.py')
    dist_train(config, work_dir, *cfg_options(photo_dir))
    assert osp.exists(osp.join(work_dir, 'epoch_1.pth'))
    log = '\n'.join(open(p).read() for p in glob.glob(osp.join(work_dir, '*', '*.log')))
    assert 'Distributed training: True' in log and 'GPU number: 2' in log, log[:3000]
    first = [r for r in scalars(work_dir) if 'loss_p4' in r]
    assert len(first) == 2  # 8 photos / (2 ranks x batch 2)
    assert all(math.isfinite(r[n]) for r in first for n in LOSSES)

    dist_train(config, work_dir, '--resume', *cfg_options(photo_dir, 'train_cfg.max_epochs=2'))
    assert osp.exists(osp.join(work_dir, 'epoch_2.pth'))
    log = '\n'.join(open(p).read() for p in sorted(glob.glob(osp.join(work_dir, '*', '*.log'))))
    assert 'resumed epoch: 1' in log
    assert 'Epoch(train) [2][2/2]' in log


def test_resume_restores_queue_pointer_and_momentum_encoder_exactly(photo_dir, tmp_path):
    from mmengine.config import Config
    from mmengine.runner import Runner

    import crosscl_mm  # noqa: F401
    work_dir = str(tmp_path / 'resume')
    cfg = Config.fromfile(osp.join(TEST_CONFIGS, 'crosscl_r18_tiny.py'))
    cfg.work_dir = work_dir
    cfg.train_dataloader.dataset.data_root = photo_dir
    cfg.model.queue_len = 6  # wraps within the epoch
    runner = Runner.from_cfg(cfg)
    runner.train()
    saved = {k: v.clone() for k, v in runner.model.state_dict().items()}
    assert int(saved['queue.ptr']) == (4 * 2) % 6

    cfg2 = cfg.copy()
    cfg2.resume = True
    cfg2.load_from = osp.join(work_dir, 'epoch_1.pth')
    cfg2.experiment_name = 'resumed'
    runner2 = Runner.from_cfg(cfg2)
    runner2.train()  # resumes at epoch 1 of 1: loads everything, trains nothing
    assert runner2.epoch == 1 and runner2.iter == 4
    restored = runner2.model.state_dict()
    for key in ['queue.keys', 'queue.ptr', 'momentum_encoder.steps'] + \
            [k for k in saved if k.startswith('momentum_encoder.module.')]:
        assert torch.equal(restored[key], saved[key]), key
    opt_state = runner2.optim_wrapper.optimizer.state_dict()
    assert len(opt_state['state']) > 0  # momentum buffers came back too


def test_package_densecl_config_two_cpu_processes_then_resume(photo_dir, tmp_path):
    """The environment's own DenseCL config (mmselfsup's or mmpretrain's,
    inherited with `package::`, plus custom_imports of crosscl_mm) trains on 2
    CPU processes and resumes."""
    work_dir = str(tmp_path / 'densecl')
    config = DENSECL_TINY
    options = ['--cfg-options', f'train_dataloader.dataset.data_root={photo_dir}']
    dist_train(config, work_dir, *options)
    assert osp.exists(osp.join(work_dir, 'epoch_1.pth'))
    first = [r for r in scalars(work_dir) if 'loss' in r]
    assert len(first) == 2 and all(math.isfinite(r['loss']) for r in first)
    dist_train(config, work_dir, '--resume', *options, 'train_cfg.max_epochs=2')
    assert osp.exists(osp.join(work_dir, 'epoch_2.pth'))
    log = '\n'.join(open(p).read() for p in sorted(glob.glob(osp.join(work_dir, '*', '*.log'))))
    assert 'resumed epoch: 1' in log and 'Epoch(train) [2][2/2]' in log
