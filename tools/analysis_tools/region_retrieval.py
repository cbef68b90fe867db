"""Cross-view region retrieval: does a window of one view find its own region
in the other view?

    python tools/analysis_tools/region_retrieval.py PHOTOS [NAME=]CKPT ... [--random-init] \
        [--view-config configs/demo/crosscl_r50fpn_demo_photos.py] [--pairs 8] \
        [--seeds 0 1 2] [--levels c3 c4 p3 p4] [--out results.json]

For every photo under PHOTOS (searched recursively) and every seed, ``--pairs``
view pairs are drawn by the view config's own train pipeline (everything
before packing: CrossCL's shared flip, both random crops, the sliding windows
mapped from the query view into the key view, the colour augmentation). A pair
counts when at least two of its windows are valid (their mapped box lies in
the key view). For each valid window ``i`` the window is pooled from the query
view's map and the mapped boxes of all valid windows ``j`` of that pair are
pooled from the key view's map (1x1 precise RoI pooling, L2-normalised:
``crosscl_mm.models.utils.region_embeddings``, as CrossCL's losses pool
regions). The window is *retrieved* when its cosine similarity with its own
mapped box is strictly higher than with every other candidate (a tie is a
miss). The score of a (model, level, seed) is the percentage of retrieved
windows over all pairs; the chance level is the mean of ``1 / candidates``.
The same views are used for every model. The table gives ``mean ± std``
over seeds; with ``--random-init`` a second table gives each model's score
minus random init's, seed by seed, ``mean ± std`` over seeds: how hard a
seed's views are cancels in the difference, so its spread is that of the
comparison.

Every model is the network a Mask R-CNN R50-FPN fine-tuning starts from: an
mmdet ResNet-50 (C2-C5, BN in eval mode) and, where the checkpoint holds a
pretrained FPN, an mmdet FPN (P2-P5) with the norm layers the checkpoint has
(none for CrossCL's, BN for SoCo's). CKPT is a file the converter wrote
(``tools/model_converters/convert_pretrained.py --to mmdet [--with-fpn]``),
a pretraining checkpoint the converter reads (converted here, with its FPN),
or a checkpoint whose ``backbone.*`` mmdet's ResNet loads directly (mmselfsup
or mmpretrain MoCo v2 / DenseCL). ``--random-init`` adds the fine-tuning's
random initialisation (mmdet's init of the same ResNet-50 and of an FPN
without norm, torch seed 0). A level a model does not have (P4 without a
pretrained FPN) is reported as absent, never computed from random layers.

BatchNorm statistics: the fine-tuning trains every BN layer and normalises
with batch statistics, so a checkpoint's running statistics never reach it,
and random init's are 0 and 1. By default every model's BN statistics are
re-estimated on the views being scored (per seed, the plain average over
batches, as PreciseBN), then the model is scored in eval mode;
``--norm-statistics checkpoint`` keeps the checkpoint's own.

What it measures: how well pooled region features of unseen photos survive
the pretraining augmentations (crop, scale, flip, colour): what a regional
contrastive objective optimises. It does not measure detection quality.

Checkpoints are loaded with ``weights_only=True``. Exit status 2 with a
message for an unusable checkpoint, photo folder or level.
"""
import argparse
import json
import os.path as osp
import random
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from visualize_regions import pipeline_without_packing  # noqa: E402
from visualize_similarity import views_as_inputs  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_VIEW_CONFIG = osp.join(REPO, 'configs', 'demo', 'crosscl_r50fpn_demo_photos.py')
WINDOWS = 'p4'  # the windows of SlidingWindowRegions' 'regions_p4' are the queries
# Level name -> stride; C2-C5 from the ResNet, P2-P5 from the FPN (mmdet's order).
STRIDES = dict(c2=4, c3=8, c4=16, c5=32, p2=4, p3=8, p4=16, p5=32)
FPN_IN_CHANNELS = (256, 512, 1024, 2048)


# ---- the measurement -------------------------------------------------------

def retrieved_windows(query, keys, valid):
    """Which windows find their own region among the candidates of their pair.

    Args:
        query: ``(N, K, C)`` unit vectors: window ``i`` of pair ``n`` pooled
            from the query view.
        keys: ``(N, K, C)`` unit vectors: the mapped box of window ``j``
            pooled from the key view.
        valid: ``(N, K)`` bool: windows whose mapped box lies in the key view.

    Returns:
        tuple: ``(hits, counted)``, two ``(N, K)`` bool tensors. A window is
        counted when it is valid and its pair has at least two valid windows;
        it is a hit when ``<q_i, k_i>`` is strictly above ``<q_i, k_j>`` for
        every other valid ``j`` of the pair.
    """
    import torch
    sim = torch.einsum('nic,njc->nij', query, keys)
    own = sim.diagonal(dim1=1, dim2=2)
    k = sim.shape[-1]
    others = valid[:, None, :] & ~torch.eye(k, dtype=torch.bool, device=sim.device)
    best_other = sim.masked_fill(~others, float('-inf')).amax(dim=-1)
    counted = counted_windows(valid)
    return counted & (own > best_other), counted


def counted_windows(valid):
    """``(N, K)`` bool: the valid windows of pairs with at least two valid
    windows (a window needs another candidate to be retrieved among)."""
    return valid & (valid.sum(dim=1, keepdim=True) >= 2)


def chance_percent(valid) -> float:
    """The score of guessing: the mean over counted windows of one over
    their pair's number of candidates, in percent."""
    counted = counted_windows(valid)
    candidates = valid.sum(dim=1, keepdim=True).clamp(min=1)
    return float((counted.float() / candidates).sum() / counted.sum() * 100)


@dataclass
class ViewPairs:
    """``count`` view pairs: both views stacked (``(count, S, S, 3)`` uint8),
    the query windows and their mapped boxes (``(count, K, 4)``) and the
    valid mask (``(count, K)``)."""
    query_views: np.ndarray
    key_views: np.ndarray
    query_boxes: np.ndarray
    key_boxes: np.ndarray
    valid: np.ndarray


def draw_view_pairs(pipeline, images: Sequence[str], pairs: int, seed: int,
                    max_draws: int = 100) -> ViewPairs:
    """``pairs`` view pairs of each image with at least two valid windows,
    drawn by ``pipeline`` with every random generator seeded by ``seed``
    (the same seed gives the same pairs)."""
    import torch
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    drawn = []
    for path in images:
        for _ in range(pairs):
            for _ in range(max_draws):
                results = pipeline(dict(img_path=path))
                if results is None:
                    raise ValueError(f'{path}: not a readable image')
                if np.count_nonzero(results[f'regions_{WINDOWS}']['valid']) >= 2:
                    break
            else:
                raise ValueError(f'{path}: no draw of {max_draws} had two windows inside the '
                                 f'key view')
            drawn.append(results)
    regions = [r[f'regions_{WINDOWS}'] for r in drawn]
    return ViewPairs(np.stack([r['img'][0] for r in drawn]), np.stack([r['img'][1] for r in drawn]),
                     np.stack([r['query_boxes'] for r in regions]),
                     np.stack([r['key_boxes'] for r in regions]),
                     np.stack([r['valid'] for r in regions]))


# ---- the networks ------------------------------------------------------------

@dataclass
class Encoder:
    """mmdet's ResNet-50 and, if pretrained (or for the random init), FPN;
    ``levels`` are the level names this encoder reports."""
    name: str
    backbone: 'torch.nn.Module'
    fpn: Optional['torch.nn.Module'] = None
    levels: Tuple[str, ...] = ()
    note: str = ''

    def maps(self, img) -> Dict[str, 'torch.Tensor']:
        """Feature maps by level name for a normalised ``(N, 3, H, W)`` batch."""
        out = dict(zip(('c2', 'c3', 'c4', 'c5'), self.backbone(img)))
        if self.fpn is not None:
            out.update(zip(('p2', 'p3', 'p4', 'p5'), self.fpn(tuple(out[c] for c in
                                                                   ('c2', 'c3', 'c4', 'c5')))))
        return {level: out[level] for level in self.levels}

    def estimate_norm_statistics(self, batches: Sequence['torch.Tensor']) -> None:
        """Set every BatchNorm layer's running mean and variance to the plain
        average of its batch statistics over ``batches`` (normalised
        ``(N, 3, H, W)`` tensors), as PreciseBN does; eval mode afterwards."""
        import torch
        from torch.nn.modules.batchnorm import _BatchNorm
        modules = [m for m in (self.backbone, self.fpn) if m is not None]
        norms = [n for m in modules for n in m.modules() if isinstance(n, _BatchNorm)]
        momenta = [n.momentum for n in norms]
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # a cumulative average
        for module in modules:
            module.train()
        with torch.no_grad():
            for img in batches:
                self.maps(img)
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
        for module in modules:
            module.eval()


def mmdet_weights(path: str) -> Tuple[Dict[str, 'torch.Tensor'], str]:
    """The mmdet state dict a fine-tuning would load from ``path``, and where
    it came from: the converter's output as is; anything else through the
    converter's readers (backbone and, where pretrained, FPN)."""
    from crosscl_mm.converters import (CheckpointError, convert, load_checkpoint_safely,
                                       read_pretrained_checkpoint)
    ckpt = load_checkpoint_safely(path)
    meta = ckpt.get('meta') if isinstance(ckpt, dict) else None
    if isinstance(meta, dict) and meta.get('converter') == 'crosscl_mm':
        state = ckpt.get('state_dict')
        if not isinstance(state, dict):
            raise CheckpointError(f'{path}: a converted checkpoint without a "state_dict"')
        return state, 'converted for mmdet'
    source = read_pretrained_checkpoint(ckpt, path).source
    return convert(ckpt, 'mmdet', with_fpn=True, path=path).state_dict, f'read as {source}'


def _fpn_levels(loaded: set, fpn) -> Tuple[str, ...]:
    """P levels whose every weight is loaded: P_l needs the laterals of C_l
    and above (the top-down sum) and its own output conv."""
    def complete(prefix):
        keys = [k for k in fpn.state_dict() if k.startswith(prefix)]
        return bool(keys) and all(k in loaded for k in keys)
    levels = []
    for i, name in enumerate(('p2', 'p3', 'p4', 'p5')):
        if all(complete(f'lateral_convs.{j}.') for j in range(i, 4)) and \
                complete(f'fpn_convs.{i}.'):
            levels.append(name)
    return tuple(levels)


def build_encoder(name: str, state: Optional[Dict[str, 'torch.Tensor']] = None,
                  note: str = '') -> Encoder:
    """The encoder of one model; ``state=None`` gives the random init."""
    import torch
    from mmdet.models.backbones import ResNet
    from mmdet.models.necks import FPN

    from mmengine.logging import MMLogger

    from crosscl_mm.converters import CheckpointError
    # init_weights logs every parameter's initialiser at INFO; keep warnings only.
    if not MMLogger.check_instance_created('region_retrieval'):
        MMLogger.get_instance('region_retrieval', log_level='WARNING')
    torch.manual_seed(0)
    backbone = ResNet(depth=50, out_indices=(0, 1, 2, 3), norm_cfg=dict(type='BN'),
                      norm_eval=False, style='pytorch')
    if state is None:
        fpn = FPN(list(FPN_IN_CHANNELS), 256, num_outs=4)
        backbone.init_weights()
        fpn.init_weights()
        # eval() of mmdet's ResNet returns None (its train() does not return self).
        backbone.eval()
        fpn.eval()
        return Encoder(name, backbone, fpn, ('c2', 'c3', 'c4', 'c5', 'p2', 'p3', 'p4', 'p5'),
                       note or "mmdet's init, torch seed 0")
    part = {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}
    if not part:
        raise CheckpointError(f'{name}: no "backbone.*" weights')
    try:
        backbone.load_state_dict(part, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f'{name}: the backbone is not an mmdet ResNet-50: '
                              f'{" ".join(str(exc).split())[:300]}') from None
    levels = ('c2', 'c3', 'c4', 'c5')
    neck = {k[len('neck.'):]: v for k, v in state.items()
            if k.startswith(('neck.lateral_convs.', 'neck.fpn_convs.'))}
    fpn = None
    if neck:
        with_norm = any('.bn.' in k for k in neck)
        fpn = FPN(list(FPN_IN_CHANNELS), 256, num_outs=4,
                  norm_cfg=dict(type='BN') if with_norm else None)
        fpn.init_weights()
        missing, unexpected = fpn.load_state_dict(neck, strict=False)
        if unexpected:
            raise CheckpointError(f'{name}: FPN weights that an mmdet FPN '
                                  f'{"with" if with_norm else "without"} BN does not have: '
                                  f'{unexpected[:4]}')
        levels += _fpn_levels(set(neck), fpn)
        fpn.eval()
    backbone.eval()
    return Encoder(name, backbone, fpn, levels, note)


# ---- putting it together ------------------------------------------------------

@dataclass
class Scores:
    """Per level: the hit percentage of each seed, and the windows counted."""
    percent: Dict[str, List[float]] = field(default_factory=dict)
    windows: Dict[str, List[int]] = field(default_factory=dict)


def view_batches(data_preprocessor, pairs: ViewPairs, chunk: int = 16):
    """The views as normalised inputs: ``[(query views, key views), ...]``,
    ``chunk`` pairs at a time."""
    return [tuple(views_as_inputs(data_preprocessor, [pairs.query_views[start:start + chunk],
                                                      pairs.key_views[start:start + chunk]]))
            for start in range(0, len(pairs.valid), chunk)]


def features(encoder: Encoder, batches, pairs: ViewPairs, levels: Sequence[str]
             ) -> Dict[str, Tuple['torch.Tensor', 'torch.Tensor']]:
    """Per level: the query windows pooled from the query views and the
    mapped boxes pooled from the key views, ``(N, K, C)`` each.

    Args:
        batches: :func:`view_batches` of ``pairs``.
    """
    import torch

    from crosscl_mm.models.utils import region_embeddings
    out = {level: ([], []) for level in levels}
    start = 0
    with torch.no_grad():
        for img_q, img_k in batches:
            rows = slice(start, start + len(img_q))
            start += len(img_q)
            maps_q, maps_k = encoder.maps(img_q), encoder.maps(img_k)
            boxes_q = torch.as_tensor(pairs.query_boxes[rows], dtype=torch.float32)
            boxes_k = torch.as_tensor(pairs.key_boxes[rows], dtype=torch.float32)
            for level in levels:
                out[level][0].append(region_embeddings(maps_q[level], boxes_q, STRIDES[level]))
                out[level][1].append(region_embeddings(maps_k[level], boxes_k, STRIDES[level]))
    return {level: (torch.cat(q), torch.cat(k)) for level, (q, k) in out.items()}


def evaluate(encoders: Sequence[Encoder], images: Sequence[str], view_config: str,
             pairs: int, seeds: Sequence[int], levels: Sequence[str],
             norm_statistics: str = 'views'):
    """Scores of every encoder, and the chance level per seed.

    ``norm_statistics='views'`` re-estimates every encoder's BatchNorm
    statistics on each seed's views (query and key) before scoring it;
    ``'checkpoint'`` keeps the ones it was loaded with.
    """
    import torch

    from crosscl_mm.registry import MODELS
    from mmengine.config import Config
    cfg = Config.fromfile(view_config)
    pipeline = pipeline_without_packing(cfg)
    data_preprocessor = MODELS.build(cfg.model.data_preprocessor)
    scores = {e.name: Scores() for e in encoders}
    chance = []
    for seed in seeds:
        drawn = draw_view_pairs(pipeline, images, pairs, seed)
        batches = view_batches(data_preprocessor, drawn)
        valid = torch.as_tensor(drawn.valid)
        chance.append(chance_percent(valid))
        for encoder in encoders:
            if norm_statistics == 'views':
                encoder.estimate_norm_statistics([img for pair in batches for img in pair])
            present = [lvl for lvl in levels if lvl in encoder.levels]
            for level, (q, k) in features(encoder, batches, drawn, present).items():
                hits, counted = retrieved_windows(q, k, valid)
                score = scores[encoder.name]
                score.percent.setdefault(level, []).append(
                    float(hits.sum()) / float(counted.sum()) * 100)
                score.windows.setdefault(level, []).append(int(counted.sum()))
    return scores, chance


def mean_std(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``; 0 for one value)."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def table(encoders: Sequence[Encoder], scores: Dict[str, Scores], chance: Sequence[float],
          levels: Sequence[str]) -> str:
    """Markdown: one row per model, ``mean ± std`` over seeds per level."""
    lines = ['| model | ' + ' | '.join(lvl.upper() for lvl in levels) + ' |',
             '| --- |' + ' --- |' * len(levels)]
    for encoder in encoders:
        cells = []
        for level in levels:
            values = scores[encoder.name].percent.get(level)
            if values is None:
                cells.append('no FPN' if level.startswith('p') else '—')
            else:
                mean, std = mean_std(values)
                cells.append(f'{mean:.1f} ± {std:.1f}')
        lines.append(f'| {encoder.name} | ' + ' | '.join(cells) + ' |')
    mean, std = mean_std(chance)
    lines.append('| chance | ' + ' | '.join([f'{mean:.1f}'] * len(levels)) + ' |')
    return '\n'.join(lines)


def difference_table(encoders: Sequence[Encoder], scores: Dict[str, Scores],
                     levels: Sequence[str], reference: str) -> str:
    """Markdown: each model's score minus the ``reference`` model's, seed by
    seed (both scored on the same views, so how hard a seed's views are
    cancels), ``mean ± std`` over seeds."""
    base = scores[reference].percent
    lines = [f'| model - {reference} | ' + ' | '.join(lvl.upper() for lvl in levels) + ' |',
             '| --- |' + ' --- |' * len(levels)]
    for encoder in encoders:
        if encoder.name == reference:
            continue
        cells = []
        for level in levels:
            values = scores[encoder.name].percent.get(level)
            if values is None or level not in base:
                cells.append('no FPN' if level.startswith('p') else '—')
            else:
                mean, std = mean_std([v - b for v, b in zip(values, base[level])])
                cells.append(f'{mean:+.1f} ± {std:.1f}')
        lines.append(f'| {encoder.name} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def parse_model(spec: str) -> Tuple[str, str]:
    """``NAME=PATH`` or ``PATH`` (named after the file)."""
    if '=' in spec and not osp.exists(spec):
        name, _, path = spec.partition('=')
        return name, path
    return osp.splitext(osp.basename(spec))[0], spec


def main(argv: Optional[List[str]] = None) -> Dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('photos', help='folder of held-out photos (searched recursively)')
    parser.add_argument('models', nargs='*', help='[NAME=]CHECKPOINT, one per model')
    parser.add_argument('--random-init', action='store_true',
                        help="add the fine-tuning's random initialisation as a model")
    parser.add_argument('--view-config', default=DEFAULT_VIEW_CONFIG,
                        help='config whose train pipeline draws the views and whose data '
                             'preprocessor normalises them (default: the demo\'s CrossCL '
                             'config)')
    parser.add_argument('--pairs', type=int, default=12, help='view pairs per photo and seed')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--levels', nargs='+', default=['c3', 'c4', 'p3', 'p4'],
                        choices=sorted(STRIDES))
    parser.add_argument('--norm-statistics', choices=['views', 'checkpoint'], default='views',
                        help='BatchNorm statistics: re-estimated on the scored views for every '
                             'model (default; the fine-tuning normalises with batch statistics '
                             'too), or those the checkpoint holds')
    parser.add_argument('--out', help='write every score as JSON here')
    args = parser.parse_args(argv)
    if not args.models and not args.random_init:
        parser.error('give at least one checkpoint or --random-init')
    if args.pairs < 1:
        parser.error('--pairs must be at least 1')

    import crosscl_mm  # noqa: F401  (registers the transforms, allow-lists checkpoint types)
    from crosscl_mm.converters import CheckpointError
    from crosscl_mm.datasets.image_folder import scan_image_folder
    try:
        images, _ = scan_image_folder(args.photos, name='PHOTOS')
        encoders = [build_encoder('random init')] if args.random_init else []
        for spec in args.models:
            name, path = parse_model(spec)
            state, note = mmdet_weights(path)
            encoders.append(build_encoder(name, state, note))
        scores, chance = evaluate(encoders, images, args.view_config, args.pairs, args.seeds,
                                  args.levels, args.norm_statistics)
    except (CheckpointError, FileNotFoundError, ValueError) as exc:
        print(f'region_retrieval: {exc}', file=sys.stderr)
        sys.exit(2)

    windows = {lvl: w for s in scores.values() for lvl, w in s.windows.items()}
    print(f'cross-view region retrieval, % of windows whose nearest mapped region is their own '
          f'(mean ± std over seeds {args.seeds}): {len(images)} photos x {args.pairs} view pairs '
          f'per seed, {next(iter(windows.values()))[0] if windows else 0} windows per seed')
    print(table(encoders, scores, chance, args.levels))
    if args.random_init and len(encoders) > 1:
        print('\nchange from random init on the same views (mean ± std over seeds):')
        print(difference_table(encoders, scores, args.levels, encoders[0].name))
    for encoder in encoders:
        if encoder.note:
            print(f'  {encoder.name}: {encoder.note}; levels {", ".join(encoder.levels)}')
    report = dict(photos=len(images), pairs=args.pairs, seeds=args.seeds, levels=args.levels,
                  view_config=args.view_config, norm_statistics=args.norm_statistics,
                  chance=chance,
                  models={e.name: dict(levels=list(e.levels), note=e.note,
                                       percent=scores[e.name].percent,
                                       windows=scores[e.name].windows) for e in encoders})
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=1)
    return report


if __name__ == '__main__':
    main()
