"""Plot CrossCL's loss terms and accuracies from a pretraining work dir.

    python tools/analysis_tools/plot_training_curves.py WORK_DIR --out FILE.png

One PNG, two panels against the iteration (mmengine's ``step``, which keeps
counting across a resumed run): the total loss and the five InfoNCE terms
(``loss_global``, ``loss_p4``, ``loss_p3``, ``loss_p4_p3``, ``loss_p3_p4``),
then the top-1 accuracy of each term (``acc_*``, in percent). Terms a config
switches off (weight 0, or the global-only ablation) are simply absent.

The values are what the logger wrote to ``<timestamp>/vis_data/scalars.json``
(every run in WORK_DIR, oldest first), read with
:func:`crosscl_mm.utils.work_dir.read_scalars`, the project's one reader of
that file, one point per ``default_hooks.logger.interval`` iterations. They
are what mmengine's LogProcessor reports: the losses are means over the last
``log_processor.window_size`` iterations (its ``mean_pattern`` matches
``loss``), the accuracies are the value of the logged iteration alone.
mmdet's ``analyze_logs.py`` is not used: it ships in mmdet's ``.mim/tools``
folder, not as an importable module.

Exits with status 2, naming WORK_DIR, when it holds no scalars.json or none
of these keys.
"""
import argparse
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Tuple

LOSS_KEYS = ('loss', 'loss_global', 'loss_p4', 'loss_p3', 'loss_p4_p3', 'loss_p3_p4')
ACC_KEYS = ('acc_global', 'acc_p4', 'acc_p3', 'acc_p4_p3', 'acc_p3_p4')


class NoCurvesError(ValueError):
    """A work dir without the logged scalars to plot."""


def training_curves(work_dir: str) -> Dict[str, Tuple[List[int], List[float]]]:
    """``{key: (steps, values)}`` for every key of LOSS_KEYS and ACC_KEYS the
    run logged, in the order of those tuples."""
    from crosscl_mm.utils.work_dir import read_scalars
    records = read_scalars(work_dir)
    if not records:
        raise NoCurvesError(f'{work_dir}: no */vis_data/scalars.json (is it an mmengine work '
                            f'dir of a run that logged at least once?)')
    curves = {}
    for key in LOSS_KEYS + ACC_KEYS:
        found = [(r['step'], r[key]) for r in records if key in r]
        if found:
            steps, values = zip(*found)
            curves[key] = (list(steps), list(values))
    if not curves:
        raise NoCurvesError(f'{work_dir}: its scalars.json has none of '
                            f'{", ".join(LOSS_KEYS + ACC_KEYS)}')
    return curves


def plot(curves: Dict[str, Tuple[List[int], List[float]]], title: str = ''):
    """The two-panel matplotlib figure."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(12, 4.5), dpi=100)
    for ax, keys, label in ((loss_ax, LOSS_KEYS, 'loss'), (acc_ax, ACC_KEYS, 'accuracy (%)')):
        shown = [k for k in keys if k in curves]
        for key in shown:
            steps, values = curves[key]
            # The total is the sum of the terms: drawn thicker and in black.
            style = dict(color='black', linewidth=2) if key == 'loss' else dict(linewidth=1.2)
            ax.plot(steps, values, marker='.' if len(steps) < 50 else None, label=key, **style)
        ax.set_xlabel('iteration')
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if shown:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, f'no {label} logged', ha='center', va='center',
                    transform=ax.transAxes)
    loss_ax.set_title('InfoNCE terms and their sum')
    acc_ax.set_title('top-1 accuracy of each term')
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('work_dir', help='the --work-dir of a pretraining run')
    parser.add_argument('--out', required=True, help='PNG to write')
    args = parser.parse_args(argv)
    try:
        curves = training_curves(args.work_dir)
    except NoCurvesError as exc:
        print(f'plot_training_curves: {exc}', file=sys.stderr)
        sys.exit(2)
    fig = plot(curves, title=osp.abspath(args.work_dir))
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    fig.savefig(args.out)
    steps = sorted({s for steps, _ in curves.values() for s in steps})
    print(f'{args.out}: {len(curves)} curves ({", ".join(curves)}) over iterations '
          f'{steps[0]}-{steps[-1]} ({len(steps)} logged points)')


if __name__ == '__main__':
    main()
