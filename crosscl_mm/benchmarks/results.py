"""The results of a protocol's trials: each trial's final metrics read back
from what mmengine logged (``<work_dir>/<timestamp>/vis_data/scalars.json``),
their mean and sample standard deviation, and the table in Markdown and JSON,
written atomically."""
import json
import statistics
from typing import Dict, List, Optional, Sequence

from crosscl_mm.utils.files import open_atomically
from crosscl_mm.utils.work_dir import read_scalars

# result key -> the key mmdet's evaluator logs (a fraction; the table is in percent).
# CocoMetric: coco/bbox_mAP, coco/bbox_mAP_50, ...; LVISMetric: lvis/bbox_AP,
# lvis/bbox_APr, ...; VOCMetric: pascal_voc/mAP (the mean of AP over IoU 0.50,
# 0.55, ..., 0.95, as the VOC base evaluates), pascal_voc/AP50, pascal_voc/AP75.
SCALAR_KEYS = {
    'coco': {f'{m}_AP{s}': f'coco/{m}_mAP{"_" + s if s else ""}'
             for m in ('bbox', 'segm') for s in ('', '50', '75')},
    'lvis_v1': {f'{m}_AP{s}': f'lvis/{m}_AP{s}'
                for m in ('bbox', 'segm') for s in ('', '50', '75', 'r', 'c', 'f')},
    'voc0712': {'AP': 'pascal_voc/mAP', 'AP50': 'pascal_voc/AP50', 'AP75': 'pascal_voc/AP75'},
}


def final_metrics(work_dir: str, dataset: str, keys: Sequence[str],
                  step: Optional[int] = None) -> Optional[Dict[str, float]]:
    """The last logged validation of the run in ``work_dir`` that has every
    one of ``keys`` (result keys, see :data:`SCALAR_KEYS`), in percent; with
    ``step``, only a validation logged at that step (the end of training)
    counts. None when there is none."""
    names = {key: SCALAR_KEYS[dataset][key] for key in keys}
    found = [r for r in read_scalars(work_dir) if all(n in r for n in names.values())
             and (step is None or r.get('step') == step)]
    if not found:
        return None
    return {key: 100.0 * float(found[-1][name]) for key, name in names.items()}


def summarise(trials: Sequence[Dict[str, float]], keys: Sequence[str]) -> Dict[str, Dict]:
    """key -> {mean, std, n, values}: the mean and the sample standard
    deviation (None for one trial) over the trials that have the key."""
    out = {}
    for key in keys:
        values = [t[key] for t in trials if key in t]
        if values:
            out[key] = dict(mean=statistics.mean(values),
                            std=statistics.stdev(values) if len(values) > 1 else None,
                            n=len(values), values=values)
    return out


def _number(value: Optional[float]) -> str:
    return '–' if value is None else f'{value:.2f}'


def markdown(report: Dict) -> str:
    """The table of a report (as :func:`write_results` gets it)."""
    published = report.get('published') or []
    lines = [f'# {report["title"]}', '',
             f'- protocol: `{report["protocol"]}` ({report["source"]})',
             f'- checkpoint: `{report["checkpoint"]}` (read as: {report["layout"]})',
             f'- method: `{report["method"]}`, leaf config: `{report["leaf_config"]}`',
             f'- trials: {len(report["trials"])} (seeds '
             f'{", ".join(str(t["seed"]) for t in report["trials"])})',
             f'- command: `{report["command"]}`', '']
    header = '| metric | mean | std | trials | per trial |'
    rule = '| --- | --- | --- | --- | --- |'
    for i, _ in enumerate(published, 1):
        header += f' published [{i}] |'
        rule += ' --- |'
    lines += [header, rule]
    for key, row in report['summary'].items():
        cells = [key, _number(row['mean']), _number(row['std']), str(row['n']),
                 ', '.join(f'{v:.2f}' for v in row['values'])]
        cells += [_number(entry.get(key)) for entry in published]
        lines.append('| ' + ' | '.join(cells) + ' |')
    if published:
        lines.append('')
        lines += [f'[{i}] {entry["source"]}' for i, entry in enumerate(published, 1)]
    return '\n'.join(lines) + '\n'


def write_results(report: Dict, markdown_path: str, json_path: str) -> str:
    """Write the report as JSON and its table as Markdown, each atomically;
    returns the Markdown."""
    text = markdown(report)
    with open_atomically(json_path, 'w') as f:
        json.dump(report, f, indent=2)
        f.write('\n')
    with open_atomically(markdown_path, 'w') as f:
        f.write(text)
    return text


def published_for(published: List[Dict], method: str) -> List[Dict]:
    return [entry for entry in published if entry.get('method') == method]
