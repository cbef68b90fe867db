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
sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'tools',
                            'analysis_tools'))
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
                         '--batch-size', '2', '--rounds', '3', '--iters-per-round', '1',
                         '--pipeline-samples', '6', '--no-memory'),
              timeout=900).stdout
    assert re.search(rf'mocov2, densecl from {SELFSUP_PACKAGE} \d+\.\d+', out), out
    rows = {algo: [float(v) for v in values] for algo, *values in re.findall(
        r'^\| (crosscl|mocov2|densecl) \| fp32 \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| '
        r'([\d.]+) \| not measured \| ([\d.]+) \|$', out, re.M)}
    assert sorted(rows) == ['crosscl', 'densecl', 'mocov2'], out
    for step, ips, gflop, pipeline, cpu_s in rows.values():
        assert abs(ips - 2 / step) <= 0.1 + 0.01 * ips  # img/s is the batch over the step
        assert gflop > 0 and pipeline > 0 and cpu_s > 0
    # CrossCL = MoCo v2's encoders + FPN + regional heads: strictly more arithmetic.
    assert rows['crosscl'][2] > rows['mocov2'][2]
    ratio = float(re.search(r'flop_ratio crosscl/mocov2 = ([\d.]+)', out).group(1))
    assert abs(ratio - rows['crosscl'][2] / rows['mocov2'][2]) < 0.02
    median, low, high = map(float, re.search(
        r'iter_time_ratio crosscl/mocov2 = ([\d.]+) \(fp32; median of 3 rounds, '
        r'min ([\d.]+), max ([\d.]+)\)', out).groups())
    assert low <= median <= high
    median, low, high = map(float, re.search(
        r'cpu_time_ratio crosscl/mocov2 = ([\d.]+) \(fp32; median of 3 rounds, '
        r'min ([\d.]+), max ([\d.]+)\)', out).groups())
    assert low <= median <= high


@pytest.mark.slow  # builds and trains a ResNet-50 in a process of its own: over a minute
def test_benchmark_cpu_memory_is_measured_in_a_process_of_its_own():
    """RSS cannot be split between algorithms sharing a process: each one's
    peak is taken in a process that builds it alone (ResNet-50: > 100 MB of
    weights, optimizer state and momentum copy)."""
    import benchmark_pretrain
    peak_mb = benchmark_pretrain.memory_in_subprocess('mocov2', 2, 64, channels_last=False)
    assert 500 < peak_mb < 20000


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


def test_benchmark_builds_soco_and_detco_inputs_at_the_view_size():
    """`--algos soco soco-c4 detco`: their configs at the benchmark's view
    size, and a sample of each from its own pipeline (SoCo's and SoCo-C4's
    with proposals computed for the photo by the benchmark)."""
    from mmengine.dataset import Compose
    from mmengine.registry import DefaultScope

    import benchmark_pretrain as bench
    from conftest import skimage_photo
    from crosscl_mm.datasets.proposal_records import read_proposal_record
    from crosscl_mm.registry import TRANSFORMS

    photo = skimage_photo('coffee.png')
    expected = {'soco': [(3, 96, 96), (3, 96, 96), (3, 48, 48)],
                'soco-c4': [(3, 96, 96), (3, 96, 96)],
                'detco': [(3, 96, 96), (3, 96, 96), (9, 3, 64, 64), (9, 3, 64, 64)]}
    for name, shapes in expected.items():
        spec = bench.ALGORITHMS[name]
        cfg = spec.config(96)
        info = spec.data_info(photo, 0)
        if name.startswith('soco'):
            (width, height), boxes = read_proposal_record(info['proposals_path'])
            assert (width, height) == (600, 400) and len(boxes) > 0
        with DefaultScope.overwrite_default_scope('crosscl_mm'):
            pipeline = Compose([TRANSFORMS.build(t) for t in cfg.train_dataloader.dataset.pipeline])
        views = pipeline(dict(info))['inputs']
        assert [tuple(v.shape) for v in views] == shapes, name


def test_benchmark_builds_regioncl_at_the_view_size():
    """`--algos regioncl-m regioncl-d`: two views at the view size, and swap
    boxes that fit its C5 map (the recipe's 3-5 cells at 224 px, 2-4 at 160,
    1-2 at 96)."""
    from mmengine.dataset import Compose
    from mmengine.registry import DefaultScope

    import benchmark_pretrain as bench
    from conftest import skimage_photo
    from crosscl_mm.registry import TRANSFORMS

    photo = skimage_photo('coffee.png')
    for name in ('regioncl-m', 'regioncl-d'):
        spec = bench.ALGORITHMS[name]
        assert [(spec.config(s).model.swap.min_cells, spec.config(s).model.swap.max_cells)
                for s in (96, 160, 224)] == [(1, 2), (2, 4), (3, 5)], name
        cfg = spec.config(96)
        with DefaultScope.overwrite_default_scope('crosscl_mm'):
            pipeline = Compose([TRANSFORMS.build(t) for t in cfg.train_dataloader.dataset.pipeline])
        views = pipeline(dict(spec.data_info(photo, 0)))['inputs']
        assert [tuple(v.shape) for v in views] == [(3, 96, 96), (3, 96, 96)], name
