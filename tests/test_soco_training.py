"""SoCo trains for real: configs/soco_r50fpn_100e_in1k.py made tiny through
--cfg-options, two CPU processes over gloo through tools/dist_train.sh, on
real photos with hand-made proposal records; checkpoint, then resume with the
momentum schedule continuing."""
import glob
import math
import os.path as osp

import numpy as np

from conftest import REPO, free_port, python_cmd, run
from crosscl_mm.utils.work_dir import read_scalars
from test_soco_pipeline import write_records

CONFIG = osp.join(REPO, 'configs', 'soco_r50fpn_100e_in1k.py')
LOSSES = ('loss_v1_v2', 'loss_v2_v1', 'loss_v1_v3', 'loss_v3_v1')


def tiny_options(photo_dir, proposals_root, *extra):
    """The 100-epoch recipe with ResNet-18, 64-px views and narrow heads."""
    return ['--cfg-options',
            f'train_dataloader.dataset.data_root={photo_dir}',
            f'train_dataloader.dataset.proposals_root={proposals_root}',
            'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False',
            'train_dataloader.dataset.pipeline.2.view_sizes=[64,64,32]',
            'train_dataloader.dataset.pipeline.2.level_size_limits=[14,28,55,64]',
            'model.backbone.depth=18', 'model.neck.in_channels=[64,128,256,512]',
            'model.neck.out_channels=32', 'model.head.in_channels=32',
            'model.head.conv_channels=32', 'model.head.fc_channels=64',
            'model.projector.in_channels=64', 'model.projector.hid_channels=128',
            'model.projector.out_channels=32', 'model.predictor.in_channels=32',
            'model.predictor.hid_channels=128', 'model.predictor.out_channels=32',
            'train_cfg.max_epochs=2', 'default_hooks.logger.interval=1',
            'default_hooks.checkpoint.interval=1', 'env_cfg.cudnn_benchmark=False',
            'randomness.seed=0', *extra]


def dist_train(work_dir, *args, config=CONFIG):
    env = dict(PORT=str(free_port()), PYTHON=python_cmd()[0], OMP_NUM_THREADS='1')
    return run(['bash', 'tools/dist_train.sh', config, '2', '--work-dir', work_dir, *args],
               env=env, timeout=1500)


def official_momentum(k, K):  # SoCo_FPN.py:102
    return 1. - (1. - 0.99) * (math.cos(math.pi * k / K) + 1) / 2.


def test_two_cpu_processes_then_resume_continues_the_momentum(photo_dir, tmp_path):
    proposals = str(tmp_path / 'proposals')
    write_records(photo_dir, proposals)
    run_then_resume(str(tmp_path / 'soco'), tiny_options(photo_dir, proposals), LOSSES)


def run_then_resume(work_dir, options, losses, config=CONFIG):
    """Two epochs of 2 iterations on two processes, then a resume from epoch 1:
    finite losses summing to ``loss``, the official momentum of every update
    (continuing after the resume), the warmup, the same lr after the resume."""
    proc = dist_train(work_dir, *options, config=config)
    log = '\n'.join(open(p).read() for p in glob.glob(osp.join(work_dir, '*', '*.log')))
    assert 'Distributed training: True' in log and 'GPU number: 2' in log, log[:3000]
    assert osp.exists(osp.join(work_dir, 'epoch_1.pth'))
    assert osp.exists(osp.join(work_dir, 'epoch_2.pth'))
    first = [r for r in read_scalars(work_dir) if 'loss_v1_v2' in r]
    assert len(first) == 4  # 8 photos / (2 ranks x 2) x 2 epochs
    for r in first:
        for name in losses:
            assert math.isfinite(r[name]) and -2.0 <= r[name] <= 2.0, (name, r)
        assert abs(r['loss'] - sum(r[n] for n in losses)) < 1e-4
    # K = 4 iterations; update k uses m(k) (the first update copies).
    np.testing.assert_allclose([r['momentum'] for r in first],
                               [official_momentum(k, 4) for k in range(4)], rtol=0, atol=1e-9)
    assert first[0]['lr'] < first[-1]['lr']  # warming up from lr / 100

    # Resume from epoch 1 with the same recipe: epoch 2 runs again, and the
    # momentum continues at k = 2, 3 (the official counter would restart at 0.99).
    dist_train(work_dir, '--resume', osp.join(work_dir, 'epoch_1.pth'), *options, config=config)
    log = '\n'.join(open(p).read() for p in sorted(glob.glob(osp.join(work_dir, '*', '*.log'))))
    assert 'resumed epoch: 1' in log and 'Epoch(train) [2][2/2]' in log
    resumed = [r for r in read_scalars(work_dir) if 'loss_v1_v2' in r][4:]
    assert [r['iter'] for r in resumed] == [3, 4]
    np.testing.assert_allclose([r['momentum'] for r in resumed],
                               [official_momentum(k, 4) for k in (2, 3)], rtol=0, atol=1e-9)
    np.testing.assert_allclose([r['lr'] for r in resumed], [r['lr'] for r in first[2:]],
                               rtol=1e-6)
    assert all(math.isfinite(r[n]) for r in resumed for n in losses)
    assert proc.returncode == 0
