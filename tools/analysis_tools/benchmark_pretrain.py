"""Speed and memory of the pretraining algorithms, side by side in one process.

    python tools/analysis_tools/benchmark_pretrain.py [--algos crosscl mocov2 densecl] \
        [--device cpu|cuda] [--quick] [--batch-size B] [--img-size S] [--rounds R] \
        [--iters-per-round N] [--precision fp32 [amp]] [--channels-last] \
        [--pipeline-workers W] [--pipeline-samples N] [--no-memory]
    python tools/analysis_tools/benchmark_pretrain.py --data-only [--algos crosscl detco soco] \
        [--device cpu|cuda] [--batch-size B] [--pipeline-samples N] [--rounds R]

Every algorithm of ``ALGORITHMS`` (crosscl, mocov2, densecl, soco, soco-c4, detco,
regioncl-m, regioncl-d) is built from its own config (MoCo v2 and DenseCL from the environment's package:
mmselfsup 1.0.0, or mmpretrain 1.2.0 in the ``ENV=mmpretrain`` environment)
with the same ResNet-50, batch and view size (SoCo-FPN's third view at half of it,
DetCo's local patch sets at their recipe's 255/64 px), and gets one batch of
real photos from its own train pipeline (SoCo's and SoCo-C4's with selective-search
proposals computed once per photo). Every algorithm steps one SGD optimizer,
SoCo's LARS included, so the step measures the model. All stay
resident in one process, and the timing runs in R rounds: in each round every
algorithm (and precision) runs N steps, in an order rotated from round to
round, so machine noise falls on all of them alike. Reported per algorithm:

- step: wall time of ``model.train_step`` on the fixed batch (data
  preprocessing and the copy to the device, forward, backward, SGD step,
  momentum update, queue), the median over rounds of each round's median,
  after warm-up; img/s is the batch over it. On the CPU also the process's
  CPU time per step, which does not count the time other processes held the
  cores (on a shared machine the wall time does);
- ratio to ``mocov2``: per round, the algorithm's step over MoCo v2's in that
  round; the median over rounds and its spread (min, max), of the wall time
  (``iter_time_ratio``) and on the CPU of the CPU time (``cpu_time_ratio``);
- GFLOP per step, counted by ``torch.utils.flop_counter`` (every matmul and
  convolution of forward and backward; elementwise operations not counted);
- pipeline: images/s of the algorithm's own train pipeline, in the main
  process in rounds (``--pipeline-workers 0``), or through a DataLoader with
  W workers, one algorithm after the other;
- peak memory: on CUDA, ``max_memory_allocated`` during the algorithm's step
  less what the other resident algorithms hold; on the CPU the peak RSS of a
  separate process that builds that algorithm alone and runs two steps (RSS
  is per process: it cannot be split between algorithms sharing one).

``--data-only`` measures the data path alone, for the algorithms whose
photometric ops can run on the device (``DATA_PATHS``): their train pipeline
as configured (PIL colour steps in the workers) and as in its ``_gpu-aug``
config (decode, crops, flips and boxes only), on ImageNet-sized JPEGs
(scikit-image's colour photos at 500 px, written to a temporary folder):
CPU seconds per image of one thread, as a dataloader worker spends them, in
alternating rounds, and images/s per core; then the time the data
preprocessor adds to a batch on ``--device`` to run the colour steps.

On a machine shared with other jobs, set ``OMP_NUM_THREADS=1``: with two
intra-op threads on two busy cores every op waits for its slower thread, and
steps took 5-8 times longer than on the idle machine, erratically (see
docs/benchmark.md); the header reports the load average.

``--precision fp32 amp`` times both precisions in the same rounds; ``amp`` is
:class:`MixedPrecisionOptimWrapper` (bfloat16 where the device has it,
float16 with loss scaling otherwise). ``--channels-last`` converts every
model's parameters to channels-last memory format first.
"""
import argparse
import importlib
import importlib.metadata
import json
import os
import os.path as osp
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from typing import Callable, Dict, List, Optional, Sequence

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)
REFERENCE = 'mocov2'


def default_data_info(img_path: str, index: int) -> dict:
    return dict(img_path=img_path, sample_idx=index)


@dataclass(frozen=True)
class Algorithm:
    """How the benchmark builds one algorithm.

    Attributes:
        config: view size -> the algorithm's parsed config (its ``model``,
            ``default_scope`` and ``train_dataloader`` with the pipeline and
            ``collate_fn``), views resized to that size.
        data_info: (photo path, index) -> the dict its pipeline starts from.
    """
    config: Callable[[int], 'Config']  # noqa: F821
    data_info: Callable[[str, int], dict] = default_data_info


def our_config(path: str, crop_type: str = 'PairedRandomResizedCrop', size_key: str = 'size'):
    """A config of this repository, its ``crop_type`` transforms set to the view size."""
    def load(size):
        from mmengine.config import Config
        cfg = Config.fromfile(osp.join(REPO, path))
        for t in cfg.train_dataloader.dataset.pipeline:
            if t.type == crop_type:
                t[size_key] = size
        return cfg
    return load


def package_config(algo: str):
    """The environment package's own ResNet-50 config of ``algo``."""
    def load(size):
        from crosscl_mm.utils.stack import load_baseline_config
        return load_baseline_config(algo, view_size=size)
    return load


def soco_config(path: str):
    """A SoCo config: its views at the view size, SoCo-FPN's third view at
    half of it (224/224/112 in the recipe; SoCo-C4 has two views of 224)."""
    def load(size):
        from mmengine.config import Config
        cfg = Config.fromfile(osp.join(REPO, path))
        for t in cfg.train_dataloader.dataset.pipeline:
            if t.type == 'SoCoViews':
                t.view_sizes = (size, size, size // 2)[:len(t.view_sizes)]
        return cfg
    return load


def soco_data_info(img_path: str, index: int, cache: Optional[str] = None) -> dict:
    """A photo and its SoCo proposals, computed once (selective search, about
    a second a photo) into ``cache`` (default: a cache of scikit-image's
    photos beside the other temporary files; records are named by file name)."""
    from crosscl_mm.datasets.proposal_records import (proposal_record_path,
                                                      write_proposal_record)
    from crosscl_mm.datasets.proposals import soco_proposals
    from crosscl_mm.datasets.transforms.loading import decode_rgb
    cache = cache or osp.join(tempfile.gettempdir(), 'crosscl_mm_benchmark_proposals')
    record = proposal_record_path(cache, osp.dirname(img_path), img_path)
    if not osp.exists(record):
        img = decode_rgb(img_path)
        write_proposal_record(record, (img.shape[1], img.shape[0]), soco_proposals(img))
    return dict(img_path=img_path, sample_idx=index, proposals_path=record)


def detco_config(size):
    """DetCo's config: the two global views at the view size; the local
    views (255 px) and their 64 px patches as in the recipe."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, 'configs/detco_r50_200e_in1k.py'))
    for t in cfg.train_dataloader.dataset.pipeline:
        if t.type == 'MultiViewRandomResizedCrop':
            t.sizes = (size, size, *t.sizes[2:])
    return cfg


def regioncl_config(path: str):
    """A RegionCL config: both views at the view size, the swap boxes at most
    one cell short of the C5 map's side, the recipe's range of sizes below
    that (3-5 cells at 224 px, 2-4 at 160, 1-2 at 96)."""
    def load(size):
        from mmengine.config import Config
        cfg = Config.fromfile(osp.join(REPO, path))
        for t in cfg.train_dataloader.dataset.pipeline:
            if t.type == 'MultiViewRandomResizedCrop':
                t.sizes = (size, size)
        swap = cfg.model.swap
        max_cells = min(swap.max_cells, size // swap.stride - 1)
        span = swap.max_cells - swap.min_cells  # the recipe's range of sizes, shifted down
        swap.update(max_cells=max_cells, min_cells=max(1, max_cells - span))
        return cfg
    return load


# Add an algorithm here: its config, and its pipeline's input if it needs more than a path.
ALGORITHMS: Dict[str, Algorithm] = {
    'crosscl': Algorithm(our_config('configs/crosscl_r50fpn_200e_in1k.py')),
    'mocov2': Algorithm(package_config('mocov2')),
    'densecl': Algorithm(package_config('densecl')),
    'soco': Algorithm(soco_config('configs/soco_r50fpn_100e_in1k.py'), soco_data_info),
    'soco-c4': Algorithm(soco_config('configs/soco_r50c4_100e_in1k.py'), soco_data_info),
    'detco': Algorithm(detco_config),
    'regioncl-m': Algorithm(regioncl_config('configs/regioncl-m_r50_200e_in1k.py')),
    'regioncl-d': Algorithm(regioncl_config('configs/regioncl-d_r50_200e_in1k.py')),
}


def photo_paths() -> List[str]:
    from crosscl_mm.utils.sample_photos import skimage_photo_paths
    return skimage_photo_paths()


def pipeline_and_collate(cfg):
    """The train pipeline and the collate function of a parsed config."""
    from mmengine.dataset import Compose
    from mmengine.registry import FUNCTIONS, TRANSFORMS, DefaultScope
    scope = cfg.get('default_scope', 'crosscl_mm')
    if scope != 'crosscl_mm':
        importlib.import_module(f'{scope}.datasets')
    loader = cfg.train_dataloader
    with DefaultScope.overwrite_default_scope(scope):
        pipeline = Compose([TRANSFORMS.build(t) for t in loader.dataset.pipeline])
        collate_cfg = dict(loader.get('collate_fn', dict(type='pseudo_collate')))
        collate_cfg.pop('_scope_', None)  # injected by cross-package _base_ (see compat.py)
        collate_fn = collate_cfg.pop('type')
        collate = partial(FUNCTIONS.get(collate_fn) if isinstance(collate_fn, str)
                          else collate_fn, **collate_cfg)
    return pipeline, collate


class Built:
    """One algorithm, built: model on the device, pipeline, a collated batch,
    and one optimizer wrapper per precision around one SGD optimizer."""

    def __init__(self, name: str, device: str, batch_size: int, img_size: int,
                 channels_last: bool = False, precisions: Sequence[str] = ('fp32',),
                 seed: int = 0) -> None:
        import numpy as np
        import torch
        from mmengine.registry import MODELS, DefaultScope

        import crosscl_mm  # noqa: F401  (registers our modules, applies compat fixes)
        from mmengine.logging import MessageHub
        self.name, self.device, self.batch_size = name, device, batch_size
        # What a Runner's RuntimeInfoHook records; schedules read it (SoCo's momentum).
        MessageHub.get_current_instance().update_info('max_iters', 10 ** 6)
        spec = ALGORITHMS[name]
        cfg = spec.config(img_size)
        self.scope = cfg.get('default_scope', 'crosscl_mm')
        if self.scope != 'crosscl_mm':
            importlib.import_module(f'{self.scope}.models')
            importlib.import_module(f'{self.scope}.datasets')
        paths = photo_paths()
        self.data_infos = [spec.data_info(p, i) for i, p in enumerate(paths)]
        self.pipeline, self.collate = pipeline_and_collate(cfg)
        with DefaultScope.overwrite_default_scope(self.scope):
            torch.manual_seed(seed)
            random.seed(seed)  # pipelines also draw from Python's and numpy's generators
            np.random.seed(seed)
            self.batch = self.collate([self.sample(i) for i in range(batch_size)])
            self.model = MODELS.build(cfg.model)
        self.model.init_weights()
        self.model.to(device)
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.model.train()
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.03, momentum=0.9,
                                         weight_decay=1e-4)
        self.wrappers = {p: self.optim_wrapper(p) for p in precisions}

    def sample(self, index: int) -> dict:
        return self.pipeline(dict(self.data_infos[index % len(self.data_infos)]))

    def optim_wrapper(self, precision: str):
        """An optimizer wrapper around the algorithm's one SGD optimizer."""
        from mmengine.optim import OptimWrapper
        from crosscl_mm.engine.optimizers import MixedPrecisionOptimWrapper
        if precision == 'fp32':
            return OptimWrapper(optimizer=self.optimizer)
        return MixedPrecisionOptimWrapper(optimizer=self.optimizer, dtype='auto')

    def step(self, optim_wrapper) -> None:
        import torch
        self.model.train_step(self.batch, optim_wrapper)
        if self.device == 'cuda':
            torch.cuda.synchronize()


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def timed_wall_and_cpu(fn):
    """Wall and process CPU seconds of ``fn``. On a shared CPU the wall time
    also counts the time other processes held the cores; the CPU time counts
    only this process's work (all its threads)."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def count_flops(built: Built) -> int:
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        built.step(built.optim_wrapper('fp32'))
    return counter.get_total_flops()


def pipeline_rounds(builds: Sequence[Built], samples: int, rounds: int) -> Dict[str, List[float]]:
    """Images/s of each pipeline in the main process, per round, alternating."""
    per_round = max(1, samples // rounds)
    ips = {b.name: [] for b in builds}
    for r in range(rounds):
        for b in builds[r % len(builds):] + builds[:r % len(builds)]:
            start = r * per_round
            seconds = timed(lambda: [b.sample(start + i) for i in range(per_round)])
            ips[b.name].append(per_round / seconds)
    return ips


def pipeline_workers(built: Built, workers: int, samples: int) -> float:
    """Images/s of one pipeline through a DataLoader with ``workers`` workers,
    timed from the first ``workers`` images on (worker start-up excluded)."""
    from torch.utils.data import DataLoader
    loader = DataLoader(range(samples + workers), batch_size=None, num_workers=workers,
                        collate_fn=built.sample)
    it = iter(loader)
    for _ in range(workers):
        next(it)
    seconds = timed(lambda: [next(it) for _ in range(samples)])
    del it
    return samples / seconds


def run_benchmark(algos: Sequence[str], device: str = 'cpu', batch_size: int = 8,
                  img_size: int = 224, rounds: int = 10, iters_per_round: int = 2,
                  precisions: Sequence[str] = ('fp32',), channels_last: bool = False,
                  pipeline_workers_n: int = 0, pipeline_samples: int = 200,
                  memory: bool = True, log=print) -> dict:
    """Build ``algos`` in this process, time them alternating, return the figures."""
    import torch
    load_at_start = os.getloadavg()[0]
    if device == 'cuda':
        torch.backends.cudnn.benchmark = True  # as env_cfg in the configs
    cpu_memory = {}
    if memory and device == 'cpu':
        for name in algos:  # before the timing: nothing else runs meanwhile
            log(f'memory of {name} in a process of its own ...')
            cpu_memory[name] = memory_in_subprocess(name, batch_size, img_size, channels_last)

    builds, resident_mb = [], {}
    for name in algos:
        log(f'building {name} ...')
        before = torch.cuda.memory_allocated() if device == 'cuda' else 0
        b = Built(name, device, batch_size, img_size, channels_last, precisions=precisions)
        for p in precisions:
            for _ in range(2 if device == 'cuda' else 1):  # cudnn autotuning, first-touch
                b.step(b.wrappers[p])
        if device == 'cuda':
            resident_mb[name] = (torch.cuda.memory_allocated() - before) / 2 ** 20
        builds.append(b)
    flops = {b.name: count_flops(b) for b in builds}

    peak_mb = {}
    for b in builds:
        for p in precisions:
            if device == 'cuda':
                torch.cuda.synchronize()
                others = torch.cuda.memory_allocated() / 2 ** 20 - resident_mb[b.name]
                torch.cuda.reset_peak_memory_stats()
                b.step(b.wrappers[p])
                peak_mb[(b.name, p)] = torch.cuda.max_memory_allocated() / 2 ** 20 - others
            elif b.name in cpu_memory:
                peak_mb[(b.name, p)] = cpu_memory[b.name]

    variants = [(b, p) for b in builds for p in precisions]
    log(f'timing {len(variants)} variants x {rounds} rounds x {iters_per_round} steps ...')
    step_s = {(b.name, p): [] for b, p in variants}
    step_cpu_s = {(b.name, p): [] for b, p in variants}
    for r in range(rounds):
        order = variants[r % len(variants):] + variants[:r % len(variants)]
        for b, p in order:
            times = [timed_wall_and_cpu(partial(b.step, b.wrappers[p]))
                     for _ in range(iters_per_round)]
            step_s[(b.name, p)].append(statistics.median(t[0] for t in times))
            step_cpu_s[(b.name, p)].append(statistics.median(t[1] for t in times))

    if not pipeline_samples:
        pipeline_ips = {}
    elif pipeline_workers_n > 0:
        log(f'pipelines with {pipeline_workers_n} workers ...')
        pipeline_ips = {b.name: [pipeline_workers(b, pipeline_workers_n, pipeline_samples)]
                        for b in builds}
    else:
        pipeline_ips = pipeline_rounds(builds, pipeline_samples, rounds)

    return dict(algos=list(algos), precisions=list(precisions), device=device,
                load_average=(load_at_start, os.getloadavg()[0]),
                batch_size=batch_size, img_size=img_size, rounds=rounds,
                iters_per_round=iters_per_round, channels_last=channels_last,
                pipeline_workers=pipeline_workers_n,
                amp_dtype=str(builds[0].wrappers['amp'].cast_dtype).replace('torch.', '')
                if 'amp' in precisions else None,
                step_s={f'{a}/{p}': v for (a, p), v in step_s.items()},
                step_cpu_s={f'{a}/{p}': v for (a, p), v in step_cpu_s.items()}
                if device == 'cpu' else {},
                flops=flops, pipeline_ips=pipeline_ips,
                peak_mb={f'{a}/{p}': v for (a, p), v in peak_mb.items()})


def memory_in_subprocess(name: str, batch_size: int, img_size: int, channels_last: bool) -> float:
    cmd = [sys.executable, __file__, '--memory-worker', name, '--batch-size', str(batch_size),
           '--img-size', str(img_size)] + (['--channels-last'] if channels_last else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    lines = [line for line in proc.stdout.splitlines() if line.startswith('RESULT ')]
    if proc.returncode != 0 or not lines:
        sys.exit(f'{name} failed:\n{proc.stderr[-4000:]}')
    return json.loads(lines[-1][len('RESULT '):])['peak_mb']


def memory_worker(name: str, batch_size: int, img_size: int, channels_last: bool) -> None:
    b = Built(name, 'cpu', batch_size, img_size, channels_last)
    wrapper = b.optim_wrapper('fp32')
    b.step(wrapper)
    b.step(wrapper)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print('RESULT ' + json.dumps(dict(peak_mb=peak_mb)))


def ratio_summary(results: dict, algo: str, precision: str, key: str = 'step_s') -> dict:
    """Per-round step ratio of ``algo`` to the reference (wall time, or CPU
    time with ``key='step_cpu_s'``), its median and spread."""
    mine = results[key][f'{algo}/{precision}']
    ref = results[key][f'{REFERENCE}/{precision}']
    ratios = [a / b for a, b in zip(mine, ref)]
    return dict(median=statistics.median(ratios), min=min(ratios), max=max(ratios),
                rounds=ratios)


def format_report(results: dict) -> str:
    import torch
    from crosscl_mm.utils.stack import selfsup_package
    device = results['device']
    if device == 'cuda':
        where = f'{torch.cuda.get_device_name()}, CUDA {torch.version.cuda}'
    else:
        where = (f'{platform.machine()} CPU ({os.cpu_count()} cores), '
                 f'{torch.get_num_threads()} threads, 1-minute load average '
                 '{:.1f} at the start, {:.1f} at the end'.format(*results['load_average']))
    package = selfsup_package()
    baselines = [a for a in results['algos'] if a in ('mocov2', 'densecl')]
    precisions = [p if p == 'fp32' else f'{p} ({results["amp_dtype"]})'
                  for p in results['precisions']]
    lines = [
        f'batch {results["batch_size"]}, {results["img_size"]} px, ResNet-50, {where}, '
        f'torch {torch.__version__}'
        + (f'; {", ".join(baselines)} from {package} {importlib.metadata.version(package)}'
           if baselines else '')
        + f'; {", ".join(precisions)}'
        + ('; channels_last' if results['channels_last'] else '')
        + f'; {results["rounds"]} rounds x {results["iters_per_round"]} step(s) per algorithm, '
        'alternating (median of the rounds)', '']
    workers = results['pipeline_workers']
    memory = 'CUDA, own' if device == 'cuda' else 'RSS of its own process'
    cpu = bool(results.get('step_cpu_s'))
    lines += ['| algorithm | precision | step (s) | img/s | GFLOP / step | '
              f'pipeline (img/s, {workers} workers) | peak memory (MiB, {memory}) |'
              + (' CPU time / step (s) |' if cpu else ''),
              '| --- ' * (8 if cpu else 7) + '|']
    for a in results['algos']:
        for p in results['precisions']:
            step = statistics.median(results['step_s'][f'{a}/{p}'])
            peak = results['peak_mb'].get(f'{a}/{p}')
            pipe = results['pipeline_ips'].get(a)
            lines.append(f'| {a} | {p} | {step:.3f} | {results["batch_size"] / step:.1f} | '
                         f'{results["flops"][a] / 1e9:.1f} | '
                         + (f'{statistics.median(pipe):.1f} | ' if pipe else 'not measured | ')
                         + (f'{peak:.0f} |' if peak is not None else 'not measured |')
                         + (f' {statistics.median(results["step_cpu_s"][f"{a}/{p}"]):.3f} |'
                            if cpu else ''))
    if REFERENCE in results['algos']:
        lines.append('')
        ref_flops = results['flops'][REFERENCE]
        ref_pipe = results['pipeline_ips'].get(REFERENCE)
        for a in results['algos']:
            if a == REFERENCE:
                continue
            pair = f'{a}/{REFERENCE}'
            lines.append(f'flop_ratio {pair} = {results["flops"][a] / ref_flops:.2f}')
            for p in results['precisions']:
                s = ratio_summary(results, a, p)
                lines.append(f'iter_time_ratio {pair} = {s["median"]:.2f} ({p}; median of '
                             f'{len(s["rounds"])} rounds, min {s["min"]:.2f}, max {s["max"]:.2f})')
                if cpu:
                    s = ratio_summary(results, a, p, 'step_cpu_s')
                    lines.append(f'cpu_time_ratio {pair} = {s["median"]:.2f} ({p}; median of '
                                 f'{len(s["rounds"])} rounds, min {s["min"]:.2f}, '
                                 f'max {s["max"]:.2f})')
                peak, ref_peak = (results['peak_mb'].get(f'{x}/{p}') for x in (a, REFERENCE))
                if peak and ref_peak:
                    lines.append(f'memory_ratio {pair} = {peak / ref_peak:.2f} ({p})')
            if ref_pipe:
                pipe = statistics.median(results['pipeline_ips'][a]) / statistics.median(ref_pipe)
                lines.append(f'pipeline_ratio {pair} = {pipe:.2f}')
    return '\n'.join(lines)


# ---- data-only mode: the PIL colour path against the device colour path ------------------

# algorithm: (its config, its _gpu-aug config: the same pipeline without the colour steps,
# which its data preprocessor runs on the device)
DATA_PATHS = {
    'crosscl': ('configs/crosscl_r50fpn_200e_in1k.py', 'configs/crosscl_r50fpn_200e_in1k_gpu-aug.py'),
    'detco': ('configs/detco_r50_200e_in1k.py', 'configs/detco_r50_200e_in1k_gpu-aug.py'),
    'soco': ('configs/soco_r50fpn_400e_in1k.py', 'configs/soco_r50fpn_400e_in1k_gpu-aug.py'),
}


# scikit-image's colour photographs (its logo, colour chart and gray images left out)
COLOUR_PHOTOS = ('astronaut.png', 'chelsea.png', 'coffee.png', 'rocket.jpg',
                 'motorcycle_left.png', 'motorcycle_right.png', 'hubble_deep_field.jpg',
                 'ihc.png', 'retina.jpg')


def imagenet_like_jpegs(dst: str, long_side: int = 500, quality: int = 90) -> List[str]:
    """scikit-image's colour photos resized (bicubic) to ``long_side`` on their
    longer side, written as JPEGs of ``quality``: ImageNet-sized files to decode."""
    from PIL import Image
    from crosscl_mm.utils.sample_photos import skimage_photo_paths
    os.makedirs(dst, exist_ok=True)
    written = []
    for path in skimage_photo_paths(COLOUR_PHOTOS):
        with Image.open(path) as img:
            img = img.convert('RGB')
            scale = long_side / max(img.size)
            img = img.resize((round(img.width * scale), round(img.height * scale)),
                             Image.BICUBIC)
            out = osp.join(dst, osp.splitext(osp.basename(path))[0] + '.jpg')
            img.save(out, quality=quality)
            written.append(out)
    return written


def data_only(algos: Sequence[str], device: str = 'cpu', samples: int = 120, rounds: int = 6,
              batch_size: int = 64, img_size: int = 224, reps: int = 5, log=print) -> dict:
    """CPU seconds per image of each algorithm's train pipeline with the PIL
    colour steps and without them (the ``_gpu-aug`` config: the device does
    them), measured in this process on one thread as a dataloader worker runs
    it, in ``rounds`` alternating rounds; and the time the data preprocessor
    adds to a batch of ``batch_size`` to run those colour steps on ``device``."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import MODELS, DefaultScope
    import crosscl_mm  # noqa: F401
    torch.set_num_threads(1)  # what a dataloader worker runs with
    jpeg_dir = tempfile.mkdtemp(prefix='crosscl_mm_jpegs_')
    try:
        paths = imagenet_like_jpegs(jpeg_dir)
        # SoCo's proposals of these JPEGs beside them, removed with them (the default
        # cache is named by file name and holds the original photos' records)
        soco_info = partial(soco_data_info, cache=osp.join(jpeg_dir, 'proposals'))
        infos = {name: [(soco_info if name == 'soco' else default_data_info)(p, i)
                        for i, p in enumerate(paths)] for name in algos}
        paths_cfg = {}
        for name in algos:
            for kind, config in zip(('pil', 'device'), DATA_PATHS[name]):
                cfg = Config.fromfile(osp.join(REPO, config))
                for t in cfg.train_dataloader.dataset.pipeline:  # the view size
                    if t.type == 'PairedRandomResizedCrop':
                        t.size = img_size
                paths_cfg[(name, kind)] = cfg
        pipelines = {key: pipeline_and_collate(cfg) for key, cfg in paths_cfg.items()}
        order = list(pipelines)
        per_round = max(1, samples // rounds)
        cpu_s = {key: [] for key in order}
        for r in range(rounds):
            for key in order[r % len(order):] + order[:r % len(order)]:
                pipeline = pipelines[key][0]
                data = infos[key[0]]
                torch.manual_seed(r)
                random.seed(r)
                start = time.process_time()
                for i in range(per_round):
                    pipeline(dict(data[(r * per_round + i) % len(data)]))
                cpu_s[key].append((time.process_time() - start) / per_round)

        added_ms = {}
        for name in algos:
            pipeline, collate = pipelines[(name, 'device')]
            batch = collate([pipeline(dict(infos[name][i % len(infos[name])]))
                             for i in range(batch_size)])
            pre_cfg = paths_cfg[(name, 'device')].model.data_preprocessor
            with DefaultScope.overwrite_default_scope('crosscl_mm'):
                with_aug = MODELS.build(pre_cfg).to(device)
                without = MODELS.build(dict(pre_cfg, color_augments=[])).to(device)
            times = {}
            for label, pre in (('with', with_aug), ('without', without)):
                runs = []
                for _ in range(reps + 1):
                    if device == 'cuda':
                        torch.cuda.synchronize()
                    start = time.perf_counter()
                    pre(batch, True)
                    if device == 'cuda':
                        torch.cuda.synchronize()
                    runs.append(time.perf_counter() - start)
                times[label] = statistics.median(runs[1:])  # the first warms up
            added_ms[name] = (times['with'] - times['without']) * 1000
    finally:
        import shutil
        shutil.rmtree(jpeg_dir, ignore_errors=True)
    return dict(algos=list(algos), device=device, jpegs=len(paths), long_side=500,
                img_size=img_size, samples_per_path=per_round * rounds, rounds=rounds,
                batch_size=batch_size, load_average=os.getloadavg()[0],
                cpu_s_per_image={f'{a}/{k}': v for (a, k), v in cpu_s.items()},
                preprocessor_added_ms=added_ms)


def format_data_only(results: dict) -> str:
    import torch
    device = results['device']
    where = (f'{torch.cuda.get_device_name()}' if device == 'cuda'
             else f'the CPU ({os.cpu_count()} cores, load average {results["load_average"]:.1f})')
    lines = [f'{results["jpegs"]} JPEGs of {results["long_side"]} px (longer side), views at '
             f'{results["img_size"]} px, {results["samples_per_path"]} images per path in '
             f'{results["rounds"]} alternating rounds, CPU time of one thread '
             f'(torch {torch.__version__})', '',
             '| algorithm | path | CPU ms / image | images/s per core | device / PIL |',
             '| --- | --- | --- | --- | --- |']
    for a in results['algos']:
        pil = statistics.median(results['cpu_s_per_image'][f'{a}/pil'])
        dev = statistics.median(results['cpu_s_per_image'][f'{a}/device'])
        lines.append(f'| {a} | PIL colours in the workers | {pil * 1000:.2f} | {1 / pil:.1f} | |')
        lines.append(f'| {a} | colours on the device | {dev * 1000:.2f} | {1 / dev:.1f} | '
                     f'{pil / dev:.2f}x |')
    lines.append('')
    for a in results['algos']:
        ms = results['preprocessor_added_ms'][a]
        lines.append(f'{a}: the data preprocessor adds {ms:.1f} ms per batch of '
                     f'{results["batch_size"]} on {where} for the colour steps '
                     f'({results["batch_size"] / ms * 1000:.0f} images/s)')
    return '\n'.join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--algos', nargs='+', choices=sorted(ALGORITHMS),
                        help='default: crosscl mocov2 densecl (--data-only: crosscl detco)')
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--quick', action='store_true',
                        help='batch 2, 7 rounds of 1 step, 42 pipeline samples')
    parser.add_argument('--batch-size', type=int)
    parser.add_argument('--img-size', type=int, default=224)
    parser.add_argument('--rounds', type=int)
    parser.add_argument('--iters-per-round', type=int)
    parser.add_argument('--precision', nargs='+', default=['fp32'], choices=['fp32', 'amp'])
    parser.add_argument('--channels-last', action='store_true')
    parser.add_argument('--pipeline-workers', type=int, default=0)
    parser.add_argument('--pipeline-samples', type=int)
    parser.add_argument('--no-memory', action='store_true',
                        help='skip the per-algorithm memory processes (CPU)')
    parser.add_argument('--json', help='also write the figures to this file')
    parser.add_argument('--data-only', action='store_true',
                        help='CPU cost per image of the pipelines, PIL colours vs device '
                        'colours (--algos from crosscl detco soco), and the preprocessor\'s '
                        'added time per batch (--batch-size, default 64) on --device')
    parser.add_argument('--memory-worker', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.algos = args.algos or (['crosscl', 'detco'] if args.data_only
                                else ['crosscl', 'mocov2', 'densecl'])
    if args.data_only:
        unknown = sorted(set(args.algos) - set(DATA_PATHS))
        if unknown:
            parser.error(f'--data-only: no device path for {unknown}; choose from '
                         f'{sorted(DATA_PATHS)}')
        args.batch_size = args.batch_size or (4 if args.quick else 64)
    args.batch_size = args.batch_size or (2 if args.quick else 8)
    args.rounds = args.rounds or (7 if args.quick else 10)
    args.iters_per_round = args.iters_per_round or (1 if args.quick else 2)
    args.pipeline_samples = args.pipeline_samples or (42 if args.quick else 200)
    return args


def quiet_mmengine() -> None:
    """Keep mmengine's INFO lines (every parameter's init) out of the report."""
    import logging
    from mmengine.logging import MMLogger
    MMLogger.get_current_instance().setLevel(logging.WARNING)


def main(argv=None):
    args = parse_args(argv)
    quiet_mmengine()
    if args.memory_worker:
        memory_worker(args.memory_worker, args.batch_size, args.img_size, args.channels_last)
        return
    if args.data_only:
        results = data_only(args.algos, args.device, args.pipeline_samples,
                            min(args.rounds, args.pipeline_samples), args.batch_size,
                            args.img_size, log=lambda msg: print(msg, file=sys.stderr))
        print('\n' + format_data_only(results))
        if args.json:
            with open(args.json, 'w') as f:
                json.dump(results, f, indent=1)
        return
    if REFERENCE not in args.algos:
        print(f'note: no ratios without {REFERENCE} in --algos', file=sys.stderr)
    results = run_benchmark(
        args.algos, args.device, args.batch_size, args.img_size, args.rounds,
        args.iters_per_round, args.precision, args.channels_last, args.pipeline_workers,
        args.pipeline_samples, memory=not args.no_memory,
        log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print('\n' + format_report(results))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)


if __name__ == '__main__':
    main()
