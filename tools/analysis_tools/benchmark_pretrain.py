"""Speed and memory of CrossCL against MoCo v2 and DenseCL, in one run.

    python tools/analysis_tools/benchmark_pretrain.py --algos crosscl mocov2 densecl \
        --device cpu [--quick] [--batch-size B] [--img-size S] [--iters N]

Each algorithm is built from its config (MoCo v2 and DenseCL from the
environment's own package: mmselfsup 1.0.0, or mmpretrain 1.2.0 in the
``ENV=mmpretrain`` environment) with the same ResNet-50, batch, image size and real photos, and runs
in its own process so peak memory is its own. Measured per algorithm:

- iteration: median wall time of ``model.train_step`` (forward, backward,
  SGD step, momentum update, queue) on a fixed batch, after warm-up;
- arithmetic: FLOPs of one such step, counted by ``torch.utils.flop_counter``
  (every matmul/conv of forward and backward; elementwise ops are not counted);
- pipeline: images/s of the algorithm's own train pipeline in one worker;
- memory: peak RSS (CPU) or ``max_memory_allocated`` (CUDA).

Prints a Markdown table, then ``flop_ratio crosscl/mocov2 = Y`` and
``iter_time_ratio crosscl/mocov2 = X`` (X <= 1.05 Y: CrossCL's extra time is
no more than its extra arithmetic).
"""
import argparse
import importlib
import json
import os
import os.path as osp
import resource
import statistics
import subprocess
import sys
import tempfile
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def model_and_pipeline_cfg(algo, img_size):
    """The algorithm's model and train pipeline, from its own config."""
    from mmengine.config import Config
    if algo == 'crosscl':
        cfg = Config.fromfile(osp.join(REPO, 'configs/crosscl_r50fpn_200e_in1k.py'))
        pipeline = cfg.train_dataloader.dataset.pipeline
        for t in pipeline:
            if t.type == 'PairedRandomResizedCrop':
                t.size = img_size
        return cfg.model, pipeline, 'crosscl_mm'
    from crosscl_mm.utils.stack import load_baseline_config, selfsup_package
    package = selfsup_package()
    cfg = load_baseline_config(algo, view_size=img_size, package=package)
    return cfg.model, cfg.train_dataloader.dataset.pipeline, package


def photo_paths():
    from crosscl_mm.utils.sample_photos import skimage_photo_paths
    return skimage_photo_paths()


def measure(algo, device, batch_size, img_size, iters, pipeline_samples):
    import torch
    from mmengine.dataset import Compose, pseudo_collate, default_collate
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope, init_default_scope
    from torch.utils.flop_counter import FlopCounterMode

    import crosscl_mm  # noqa: F401
    model_cfg, pipeline_cfg, scope = model_and_pipeline_cfg(algo, img_size)
    if scope != 'crosscl_mm':
        importlib.import_module(f'{scope}.models')
        importlib.import_module(f'{scope}.datasets')
    init_default_scope(scope)
    from mmengine.registry import MODELS, TRANSFORMS
    pipeline = Compose([TRANSFORMS.build(t) for t in pipeline_cfg])
    paths = photo_paths()

    # Pipeline throughput, one worker.
    torch.manual_seed(0)
    items = [pipeline(dict(img_path=paths[i % len(paths)], sample_idx=i)) for i in range(4)]
    t0 = time.perf_counter()
    for i in range(pipeline_samples):
        pipeline(dict(img_path=paths[i % len(paths)], sample_idx=i))
    pipe_ips = pipeline_samples / (time.perf_counter() - t0)

    items = [pipeline(dict(img_path=paths[i % len(paths)], sample_idx=i)) for i in range(batch_size)]
    collate = pseudo_collate if scope == 'crosscl_mm' else default_collate
    batch = collate(items)

    model = MODELS.build(model_cfg)
    model.init_weights()
    model.to(device).train()
    optim = build_optim_wrapper(model, dict(type='OptimWrapper', optimizer=dict(
        type='SGD', lr=0.03, momentum=0.9, weight_decay=1e-4)))

    def step():
        model.train_step(batch, optim)
        if device == 'cuda':
            torch.cuda.synchronize()

    step()  # warm-up: first-touch allocations, the momentum copy
    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    if device == 'cuda':
        peak_mb = torch.cuda.max_memory_allocated() / 2 ** 20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return dict(algo=algo, iter_s=statistics.median(times), flops=flops, pipeline_ips=pipe_ips,
                peak_mb=peak_mb, times=times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--algos', nargs='+', default=['crosscl', 'mocov2', 'densecl'],
                        choices=['crosscl', 'mocov2', 'densecl'])
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--quick', action='store_true', help='batch 2, 5 timed iterations')
    parser.add_argument('--batch-size', type=int)
    parser.add_argument('--img-size', type=int, default=224)
    parser.add_argument('--iters', type=int)
    parser.add_argument('--pipeline-samples', type=int)
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    args = parser.parse_args()
    batch = args.batch_size or (2 if args.quick else 8)
    iters = args.iters or (5 if args.quick else 20)
    samples = args.pipeline_samples or (40 if args.quick else 200)

    if args.worker:
        result = measure(args.worker, args.device, batch, args.img_size, iters, samples)
        print('RESULT ' + json.dumps(result))
        return

    results = {}
    for algo in args.algos:
        cmd = [sys.executable, __file__, '--worker', algo, '--device', args.device,
               '--batch-size', str(batch), '--img-size', str(args.img_size), '--iters', str(iters),
               '--pipeline-samples', str(samples)]
        print(f'measuring {algo} ...', file=sys.stderr, flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
        lines = [l for l in proc.stdout.splitlines() if l.startswith('RESULT ')]
        if proc.returncode != 0 or not lines:
            sys.exit(f'{algo} failed:\n{proc.stderr[-4000:]}')
        results[algo] = json.loads(lines[-1][len('RESULT '):])

    import importlib.metadata
    import torch
    from crosscl_mm.utils.stack import selfsup_package
    package = selfsup_package()
    baselines = ', '.join(a for a in results if a != 'crosscl')
    print(f'\nbatch {batch}, {args.img_size}px, ResNet-50, device {args.device}, '
          f'torch {torch.__version__}, {torch.get_num_threads()} threads, '
          f'{iters} timed iterations (median)'
          + (f'; {baselines} from {package} {importlib.metadata.version(package)}'
             if baselines else '') + '\n')
    print('| algorithm | iteration (s) | GFLOP / iteration | pipeline (img/s, 1 worker) | '
          f'peak memory (MiB, {"RSS" if args.device == "cpu" else "CUDA"}) |')
    print('| --- | --- | --- | --- | --- |')
    for algo, r in results.items():
        print(f'| {algo} | {r["iter_s"]:.3f} | {r["flops"] / 1e9:.1f} | '
              f'{r["pipeline_ips"]:.1f} | {r["peak_mb"]:.0f} |')
    if 'crosscl' in results and 'mocov2' in results:
        c, m = results['crosscl'], results['mocov2']
        print(f'\npipeline_ratio crosscl/mocov2 = {c["pipeline_ips"] / m["pipeline_ips"]:.2f}')
        print(f'memory_ratio crosscl/mocov2 = {c["peak_mb"] / m["peak_mb"]:.2f}')
        print(f'flop_ratio crosscl/mocov2 = {c["flops"] / m["flops"]:.2f}')
        print(f'iter_time_ratio crosscl/mocov2 = {c["iter_s"] / m["iter_s"]:.2f}')


if __name__ == '__main__':
    main()
