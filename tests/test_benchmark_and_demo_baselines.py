"""The benchmark and the demo take their MoCo v2 / DenseCL baselines from the
environment's own package (mmselfsup's configs, or mmpretrain's with
`make test ENV=mmpretrain`)."""
import os.path as osp
import re
import sys

import pytest
import torch

from conftest import SELFSUP_PACKAGE, python_cmd, run

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'tools'))
import demo  # noqa: E402  tools/demo.py


@pytest.mark.parametrize('algo', ['mocov2', 'densecl'])
def test_baseline_config_view_size(algo):
    from crosscl_mm.utils.stack import load_baseline_config
    default = load_baseline_config(algo)
    resized = load_baseline_config(algo, view_size=96)
    key = 'size' if SELFSUP_PACKAGE == 'mmselfsup' else 'scale'

    def crops(cfg):
        views = [t for t in cfg.train_dataloader.dataset.pipeline if t.type == 'MultiView']
        return [v[key] for t in views for view in t.transforms for v in view
                if v.type == 'RandomResizedCrop']

    assert crops(default) == [224] and crops(resized) == [96]
    assert resized.model == default.model


def test_benchmark_runs_package_baselines():
    out = run(python_cmd('tools/analysis_tools/benchmark_pretrain.py', '--algos', 'crosscl',
                         'mocov2', 'densecl', '--device', 'cpu', '--img-size', '64',
                         '--batch-size', '2', '--iters', '1', '--pipeline-samples', '4'),
              timeout=900).stdout
    assert re.search(rf'mocov2, densecl from {SELFSUP_PACKAGE} \d+\.\d+', out), out
    rows = dict(re.findall(r'^\| (crosscl|mocov2|densecl) \| [\d.]+ \| ([\d.]+) \|', out, re.M))
    assert sorted(rows) == ['crosscl', 'densecl', 'mocov2'], out
    gflops = {k: float(v) for k, v in rows.items()}
    # CrossCL = MoCo v2's encoders + FPN + regional heads: strictly more arithmetic.
    assert gflops['crosscl'] > gflops['mocov2'] > 0
    ratio = float(re.search(r'flop_ratio crosscl/mocov2 = ([\d.]+)', out).group(1))
    assert abs(ratio - gflops['crosscl'] / gflops['mocov2']) < 0.02


def test_demo_package_baseline_config_matches_the_demo(photo_dir, tmp_path):
    """The baseline is the package's MoCo v2 with the demo's data, views, batch,
    queue, momentum and schedule, and its loader yields two 96 px views per photo."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner

    path = demo.package_baseline_config(str(tmp_path), 'mocov2', photo_dir)
    assert osp.basename(path) == f'{SELFSUP_PACKAGE}_mocov2_demo_photos.py'
    cfg = Config.fromfile(path)
    ours = Config.fromfile(osp.join(demo.REPO, 'configs/demo/crosscl_r50fpn_demo_photos.py'))
    assert cfg.default_scope == SELFSUP_PACKAGE and cfg.model.type == 'MoCo'
    assert cfg.model.queue_len == ours.model.queue_len
    # mmselfsup's MoCo takes the momentum m, mmpretrain's 1 - m
    assert cfg.model.momentum == (ours.model.momentum if SELFSUP_PACKAGE == 'mmselfsup'
                                  else pytest.approx(1 - ours.model.momentum))
    assert cfg.optim_wrapper.optimizer.lr == ours.optim_wrapper.optimizer.lr
    assert cfg.train_cfg == ours.train_cfg and cfg.param_scheduler == ours.param_scheduler
    assert cfg.default_hooks.checkpoint.interval == ours.train_cfg.max_iters
    assert cfg.train_dataloader.batch_size == ours.train_dataloader.batch_size
    assert cfg.train_dataloader.sampler == ours.train_dataloader.sampler
    assert cfg.train_dataloader.dataset.type == 'UnlabeledImageFolder'

    import crosscl_mm  # noqa: F401  (exports UnlabeledImageFolder to the package scope)
    loader_cfg = dict(cfg.train_dataloader, num_workers=0, persistent_workers=False)
    with DefaultScope.overwrite_default_scope(SELFSUP_PACKAGE):
        __import__(f'{SELFSUP_PACKAGE}.datasets')
        batch = next(iter(Runner.build_dataloader(loader_cfg)))
    views = batch['inputs']
    assert len(views) == 2
    size = ours.img_size
    assert all(v.shape == torch.Size([ours.train_dataloader.batch_size, 3, size, size])
               for v in views)
