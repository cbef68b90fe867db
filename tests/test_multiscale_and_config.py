"""Multi-scale training, odd image sizes, and early config errors."""
import glob
import json
import os.path as osp
import time

import pytest
import torch

import crosscl_mm  # noqa: F401
from crosscl_mm.engine.hooks.multi_scale_training import mst_size_for_epoch

from conftest import TEST_CONFIGS, python_cmd, run
from test_crosscl_model import build, make_inputs, make_samples


def test_mst_schedule_for_short_and_long_runs():
    sizes = (224, 384, 480)
    # 10 epochs: the reference's int(0.01 * 10) == 0 divides by zero; here every epoch may change.
    short = [mst_size_for_epoch(e, 10, sizes, seed=7) for e in range(10)]
    assert set(short) <= set(sizes) and len(set(short)) > 1
    # 800 epochs (COCO): constant within each block of 8 epochs.
    long = [mst_size_for_epoch(e, 800, sizes, seed=7) for e in range(800)]
    assert all(len(set(long[b:b + 8])) == 1 for b in range(0, 800, 8))
    assert len(set(long)) == 3
    # Same seed, same schedule (every rank, and after resume); another seed differs.
    assert long == [mst_size_for_epoch(e, 800, sizes, seed=7) for e in range(800)]
    assert long != [mst_size_for_epoch(e, 800, sizes, seed=8) for e in range(800)]


def test_mst_run_switches_view_size_between_epochs(photo_dir, tmp_path):
    from mmengine.config import Config
    from mmengine.runner import Runner
    cfg = Config.fromfile(osp.join(TEST_CONFIGS, 'crosscl_r18_tiny.py'))
    cfg.work_dir = str(tmp_path / 'mst')
    cfg.train_dataloader.dataset.data_root = photo_dir
    cfg.train_cfg.max_epochs = 3
    cfg.randomness = dict(seed=0)
    cfg.custom_hooks = [dict(type='MultiScaleTrainingHook', sizes=(64, 96, 128))]
    runner = Runner.from_cfg(cfg)
    seen = []
    original = runner.model.loss

    def spy(inputs, data_samples):
        seen.append((runner.epoch, inputs[0].shape[-1]))
        return original(inputs, data_samples)

    runner.model.loss = spy
    runner.train()
    expected = [mst_size_for_epoch(e, 3, (64, 96, 128), seed=0) for e in range(3)]
    assert [size for _, size in seen] == [s for s in expected for _ in range(4)]


@pytest.mark.parametrize('size', [72, 100])
def test_sizes_that_are_not_multiples_of_32(size):
    model = build()
    losses = model.loss(make_inputs(2, size), make_samples(2, size))
    assert all(torch.isfinite(v) for v in losses.values())


def test_bad_config_fails_fast_naming_the_field(tmp_path):
    start = time.time()
    proc = run(python_cmd('tools/train.py', osp.join(TEST_CONFIGS, 'crosscl_r18_tiny.py'),
                          '--work-dir', str(tmp_path / 'bad'), '--cfg-options',
                          f'train_dataloader.dataset.data_root={tmp_path / "missing"}'),
               check=False, timeout=300)
    assert proc.returncode != 0
    assert 'train_dataloader.dataset.data_root=' in proc.stderr and 'is not a folder' in proc.stderr
    assert not glob.glob(str(tmp_path / 'bad' / '*'))  # no run was set up
    proc = run(python_cmd('tools/train.py', osp.join(TEST_CONFIGS, 'crosscl_r18_tiny.py'),
                          '--cfg-options', f'train_dataloader.dataset.data_root={tmp_path}',
                          'model.loss_weights.loss_p5=1.0'), check=False)
    assert proc.returncode != 0 and 'model.loss_weights.loss_p5' in proc.stderr
    assert time.time() - start < 120


def test_user_config_inherits_ours_by_package_name():
    from mmengine.config import Config
    cfg = Config.fromstring(
        "_base_ = ['crosscl_mm::benchmarks/mmdetection/"
        "mask-rcnn_r50-fpn_syncbn-all_crosscl-fpn_1x_coco.py']\n"
        "model = dict(backbone=dict(init_cfg=dict(checkpoint='mine.pth')),\n"
        "             roi_head=dict(bbox_head=dict(num_classes=20)))\n", file_format='.py')
    assert cfg.model.backbone.init_cfg == dict(type='Pretrained', checkpoint='mine.pth',
                                               prefix='backbone.')
    assert cfg.model.roi_head.bbox_head.type == 'Shared4Conv1FCBBoxHead'
    assert cfg.model.roi_head.bbox_head.num_classes == 20
    assert cfg.optim_wrapper.optimizer.weight_decay == 2.5e-5
    assert cfg.model.backbone.norm_cfg.type == 'SyncBN' and cfg.model.backbone.frozen_stages == -1
