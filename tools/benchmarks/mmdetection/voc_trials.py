"""Run the VOC07+12 Faster R-CNN C4 benchmark (the reference's 24k-iteration
protocol, docs/transfer_protocol.md) N times with different seeds and report
mean ± std of AP50, AP (VOC2007 11-point AP averaged over IoU 0.50:0.95) and
AP75, as the papers do (the seed benchmarks recommend 5 trials; note that
the seed's VOC rows said to be "means of 5 trials" are the means of two runs
for RegionCL-D R50 and R101, and a single run for DenseCL R101:
docs/transfer_protocol.md, "VOC, R101-C4"). For R101, pass an R101 leaf, e.g.
--config configs/benchmarks/mmdetection/faster-rcnn_r101-c4_syncbn_regioncl-d_24k_voc0712.py.

    python tools/benchmarks/mmdetection/voc_trials.py CKPT --gpus 8 --trials 5 \
        [--config CONFIG] [--work-root work_dirs/benchmarks/voc] [--port 29500] \
        [--collect-only] [key=value ...]

Each trial runs dist_train_voc.sh with SEED=i on port PORT + i; key=value
arguments are added to its --cfg-options. Results are read back from each
trial's scalars.json (the last validation of the run), so --collect-only
summarises finished trials without training.
"""
import argparse
import os
import os.path as osp
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
sys.path.insert(0, REPO)
from crosscl_mm.benchmarks.results import final_metrics, summarise as mean_and_std  # noqa: E402

DEFAULT_CONFIG = 'configs/benchmarks/mmdetection/faster-rcnn_r50-c4_syncbn_crosscl_24k_voc0712.py'
# VOCMetric's pascal_voc/mAP, AP50, AP75 (crosscl_mm.benchmarks.results.SCALAR_KEYS):
# 'AP' is the mean of the AP at IoU 0.50, 0.55, ..., 0.95. The same reading as
# tools/benchmarks/transfer.py, which runs any protocol's trials.
KEYS = ('AP50', 'AP', 'AP75')


def last_validation(work_dir):
    """AP50, AP, AP75 in percent of the run's last validation (None if none)."""
    return final_metrics(work_dir, 'voc0712', KEYS)


def summarise(results):
    lines = ['| metric | mean | std | trials |', '| --- | --- | --- | --- |']
    for name, row in mean_and_std(results, KEYS).items():
        std = '–' if row['std'] is None else f'{row["std"]:.2f}'
        lines.append(f'| {name} | {row["mean"]:.2f} | {std} | {row["n"]} |')
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('checkpoint')
    parser.add_argument('--gpus', type=int, default=8)
    parser.add_argument('--trials', type=int, default=5)
    parser.add_argument('--config', default=DEFAULT_CONFIG,
                        help='a leaf of the VOC protocol (default: CrossCL\'s)')
    parser.add_argument('--work-root', default='work_dirs/benchmarks/voc')
    parser.add_argument('--port', type=int, default=29500)
    parser.add_argument('--collect-only', action='store_true')
    args, extra = parser.parse_known_args()
    results = []
    for seed in range(args.trials):
        work_dir = osp.join(args.work_root, f'seed{seed}')
        if not args.collect_only:
            env = dict(os.environ, SEED=str(seed), WORK_DIR=work_dir, CONFIG=args.config,
                       PORT=str(args.port + seed))
            subprocess.run(['bash', osp.join(REPO, 'tools/benchmarks/mmdetection/dist_train_voc.sh'),
                            args.checkpoint, str(args.gpus), *extra], cwd=REPO, env=env, check=True)
        result = last_validation(work_dir)
        if result is None:
            print(f'seed {seed}: no validation results in {work_dir}', file=sys.stderr)
            continue
        results.append(result)
    if not results:
        sys.exit('no finished trials')
    print(summarise(results))


if __name__ == '__main__':
    main()
