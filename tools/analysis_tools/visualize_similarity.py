"""Where does a region of one view find itself in the other view?

    python tools/analysis_tools/visualize_similarity.py CKPT IMAGE --out DIR \
        [--config CFG] [--queries 4] [--size S] [--seed 0]

Two augmented views of IMAGE are drawn by the config's own train pipeline
(everything before packing: the shared flip, both random crops, the sliding
windows mapped from the query view into the key view, the colour
augmentation), as in training; the draw is repeated (up to 100 times) until
``--queries`` windows are valid. That many valid P4 windows of the query view,
spread over the lattice, are the queries. Each is pooled from the online P4
map of the query view by 1x1 precise RoI pooling, exactly as the P4 and
P4->P3 loss terms pool their queries, and compared by cosine similarity with
every location of the P4 and P3 maps of the key view. Both views go through
the online encoder (backbone + FPN); training pools its keys from the
momentum encoder, a moving average of it.

This is done twice, with the same views: for the weights in CKPT, and for the
same config at its initialisation. The random-init model is built with the
seed the training run recorded in the checkpoint (``meta['seed']``, else
``--seed``) the way mmengine's Runner builds it, so for a crosscl_mm run it
is the very initialisation the checkpoint started from.

One PNG, ``DIR/<image>_similarity.png``: one row per query; columns are the
query view with the query box (red), the key view with the mapped box
(blue), then the similarity to that query over the key view for P4 and P3 of
the checkpoint and P4 and P3 at initialisation, on a fixed [-1, 1] colour
scale, with the mapped box outlined and the peak marked x. A panel's title
gives the similarity of the query with the key feature pooled over the
mapped box (the loss's positive pair) and the peak of the map. Feature
``(y, x)`` is drawn centred on pixel ``(x, y) * stride``, where the pooling
reads it, so half a cell at the right and bottom edges has no colour.

CKPT is a crosscl_mm training checkpoint (or a plain state dict with the same
keys), loaded with ``weights_only=True``. The config defaults to the one the
checkpoint stores (``meta['cfg']``); give ``--config`` for a checkpoint
without one. An unusable checkpoint, config or image ends it with status 2
and a message naming the problem.
"""
import argparse
import os
import os.path as osp
import random
import sys
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from visualize_regions import KEY_CROP, QUERY_CROP, pipeline_without_packing  # noqa: E402

QUERY_BOX, KEY_BOX = QUERY_CROP, KEY_CROP  # the query view's colour and the key view's, as there
QUERY_LEVEL = 'p4'
KEY_LEVELS = ('p4', 'p3')
COLUMNS = ('query view', 'key view', 'P4 checkpoint', 'P3 checkpoint', 'P4 random init',
           'P3 random init')
# Fixed figure geometry (inches at DPI), so a grid of N rows is always the same size.
DPI = 100
PANEL = 2.0         # side of one image panel
TITLE = 0.45        # room above each panel for its title
LEFT, GAP = 0.1, 0.1
COLORBAR = 1.0      # room on the right for the colour bar and its label
HEADER = 0.5        # room above the grid for the figure title
BOTTOM = 0.1


def figure_size_px(rows: int) -> Tuple[int, int]:
    """(width, height) in pixels of the PNG for ``rows`` queries."""
    width = LEFT + len(COLUMNS) * (PANEL + GAP) + COLORBAR
    height = HEADER + rows * (PANEL + TITLE) + BOTTOM
    return round(width * DPI), round(height * DPI)


def load_config_and_weights(ckpt_path: str, config_path: Optional[str] = None):
    """The config (``config_path``, else the checkpoint's own), the state dict
    and the training seed (``None`` if the checkpoint has none)."""
    from mmengine.config import Config

    import crosscl_mm  # noqa: F401  (registers modules, allow-lists checkpoint types)
    from crosscl_mm.converters import load_checkpoint_safely
    ckpt = load_checkpoint_safely(ckpt_path)
    if not isinstance(ckpt, dict):
        raise ValueError(f'{ckpt_path}: not a checkpoint (a {type(ckpt).__name__})')
    meta = ckpt.get('meta') if isinstance(ckpt.get('meta'), dict) else {}
    state_dict = ckpt.get('state_dict', ckpt)
    if config_path is not None:
        cfg = Config.fromfile(config_path)
    elif meta.get('cfg'):
        cfg = Config.fromstring(meta['cfg'], file_format='.py')
    else:
        raise ValueError(f'{ckpt_path} stores no config (meta["cfg"]); pass --config')
    return cfg, state_dict, meta.get('seed')


def build_model(cfg, seed: int, state_dict: Optional[dict] = None):
    """The config's model in eval mode: seeded and initialised as mmengine's
    Runner does (``set_random_seed``, build, ``init_weights``), then, if
    given, the online backbone and FPN loaded strictly from ``state_dict``."""
    from mmengine.logging import MMLogger
    from mmengine.runner import set_random_seed

    from crosscl_mm.registry import MODELS
    # init_weights logs every parameter's initialiser at INFO; keep warnings only.
    if not MMLogger.check_instance_created('visualize_similarity'):
        MMLogger.get_instance('visualize_similarity', log_level='WARNING')
    set_random_seed(seed)
    model = MODELS.build(cfg.model)
    if getattr(model, 'fpn', None) is None or \
            not {QUERY_LEVEL, *KEY_LEVELS} <= set(model.region_strides):
        raise ValueError('the model has no FPN with P4 and P3: the similarity maps need them '
                         '(a global-only config?)')
    model.init_weights()
    if state_dict is not None:
        for name in ('backbone', 'fpn'):
            prefix = name + '.'
            part = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
            if not part:
                raise ValueError(f'the checkpoint has no "{prefix}*" weights')
            try:
                getattr(model, name).load_state_dict(part, strict=True)
            except RuntimeError as exc:
                raise ValueError(f'the checkpoint\'s {name} does not fit the config: '
                                 f'{" ".join(str(exc).split())[:300]} ...') from None
    return model.eval()


def draw_views(pipeline, image_path: str, queries: int, max_draws: int = 100) -> dict:
    """Pipeline results with at least ``queries`` valid P4 windows (or the
    draw with the most, after ``max_draws`` tries)."""
    best = None
    for _ in range(max_draws):
        results = pipeline(dict(img_path=image_path))
        if results is None:
            raise ValueError(f'{image_path}: not a readable image')
        valid = int(np.sum(results[f'regions_{QUERY_LEVEL}']['valid']))
        if best is None or valid > best[0]:
            best = (valid, results)
        if valid >= queries:
            break
    if best[0] == 0:
        raise ValueError(f'no draw of {max_draws} had a query window inside the key view')
    return best[1]


def choose_queries(valid: np.ndarray, n: int) -> np.ndarray:
    """Indices of ``n`` valid windows spread evenly over the lattice order."""
    candidates = np.flatnonzero(valid)
    picks = np.linspace(0, len(candidates) - 1, num=min(n, len(candidates)))
    return candidates[np.round(picks).astype(int)]


@dataclass
class Similarity:
    """One model's view of the queries. Maps are ``(1, C, H, W)``; the
    similarity maps are ``(K, H, W)`` per key level; ``at_box`` is ``(K,)``
    per key level: the query against the key map pooled over the mapped box."""
    query_maps: Dict[str, 'torch.Tensor']
    key_maps: Dict[str, 'torch.Tensor']
    query_features: 'torch.Tensor'    # (K, C), L2-normalised
    maps: Dict[str, 'torch.Tensor']
    at_box: Dict[str, 'torch.Tensor']


def views_as_inputs(data_preprocessor, views: Sequence[Sequence[np.ndarray]]):
    """Views as the model's inputs: ``views[v]`` lists view ``v`` of each
    sample as ``(S, S, 3)`` uint8 arrays (the pipeline's ``img``); returns one
    normalised ``(N, 3, S, S)`` batch per view, through the config's own data
    preprocessor (its mean, std and channel order)."""
    import torch
    batch = dict(inputs=[[torch.from_numpy(np.array(v)).permute(2, 0, 1) for v in view]
                         for view in views])
    return data_preprocessor(batch)['inputs']


def fpn_maps(model, img) -> Dict[str, 'torch.Tensor']:
    """The online FPN maps by level name, as ``CrossCL._encode`` computes them."""
    return dict(zip(model.region_order, model.fpn(model.backbone(img))))


def region_similarity(model, views: Sequence[np.ndarray], query_boxes: np.ndarray,
                      key_boxes: np.ndarray) -> Similarity:
    """Cosine similarity of each query box's pooled P4 feature (query view)
    with every location of P4 and P3 of the key view, online encoder only.

    Args:
        views: the two ``(S, S, 3)`` uint8 views, query first, as the pipeline
            returns them.
        query_boxes, key_boxes: ``(K, 4)`` boxes in view pixels.
    """
    import torch
    import torch.nn.functional as F

    from crosscl_mm.models.utils import region_embeddings
    with torch.no_grad():
        img_q, img_k = views_as_inputs(model.data_preprocessor, [[v] for v in views])
        query_maps, key_maps = fpn_maps(model, img_q), fpn_maps(model, img_k)
        q_boxes = torch.as_tensor(query_boxes, dtype=torch.float32)[None]
        k_boxes = torch.as_tensor(key_boxes, dtype=torch.float32)[None]
        strides = model.region_strides
        query = region_embeddings(query_maps[QUERY_LEVEL], q_boxes, strides[QUERY_LEVEL])[0]
        maps, at_box = {}, {}
        for level in KEY_LEVELS:
            key_map = key_maps[level]
            maps[level] = torch.einsum('kc,chw->khw', query, F.normalize(key_map[0], dim=0))
            pooled = region_embeddings(key_map, k_boxes, strides[level])[0]
            at_box[level] = (query * pooled).sum(1)
    return Similarity(query_maps, key_maps, query, maps, at_box)


def draw_box(view: np.ndarray, box: Sequence[float], colour, width: int) -> np.ndarray:
    """A copy of ``view`` with ``box`` outlined in ``colour`` (pixel-exact, so
    the colour can be checked in the PNG)."""
    canvas = Image.fromarray(view)
    x0, y0, x1, y1 = (int(round(c)) for c in box)
    ImageDraw.Draw(canvas).rectangle([x0, y0, x1 - 1, y1 - 1], outline=colour, width=width)
    return np.asarray(canvas)


def render(views, query_boxes, key_boxes, trained: Similarity, initial: Similarity,
           strides: Dict[str, int], title: str = ''):
    """The grid as a matplotlib figure, and each panel's pixel box in the PNG
    (``layout[row][col] = (left, top, right, bottom)``)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    rows = len(query_boxes)
    size = views[0].shape[0]
    width_px, height_px = figure_size_px(rows)
    fig = plt.figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI)
    if title:
        fig.suptitle(title, fontsize=9, y=1 - 0.15 / (height_px / DPI))
    line = max(1, round(size / 112))
    grey_key = np.repeat(np.asarray(Image.fromarray(views[1]).convert('L'))[..., None], 3, axis=2)
    axes = []
    for row, (q_box, k_box) in enumerate(zip(query_boxes, key_boxes)):
        bottom = BOTTOM + (rows - 1 - row) * (PANEL + TITLE)
        row_axes = []
        for col in range(len(COLUMNS)):
            left = LEFT + col * (PANEL + GAP)
            ax = fig.add_axes([left * DPI / width_px, bottom * DPI / height_px,
                               PANEL * DPI / width_px, PANEL * DPI / height_px])
            ax.set_xticks([])
            ax.set_yticks([])
            # Pixel i spans [i, i + 1): the boxes' coordinates.
            extent = (0, size, size, 0)
            if col == 0:
                ax.imshow(draw_box(views[0], q_box, QUERY_BOX, line), extent=extent,
                          interpolation='nearest')
                ax.set_title(f'query {row}: {COLUMNS[0]}', fontsize=8)
            elif col == 1:
                ax.imshow(draw_box(views[1], k_box, KEY_BOX, line), extent=extent,
                          interpolation='nearest')
                ax.set_title(f'{COLUMNS[1]}, mapped box', fontsize=8)
            else:
                sim = (trained, initial)[(col - 2) // 2]
                level = KEY_LEVELS[(col - 2) % 2]
                heat = sim.maps[level][row].numpy()
                stride = strides[level]
                # Feature (y, x) sits at pixel (x, y) * stride for the pooling
                # (precise RoI pooling's interpolant), so each cell is drawn
                # centred there.
                h, w = heat.shape
                ax.imshow(grey_key, extent=extent, interpolation='nearest')
                image = ax.imshow(heat, cmap='coolwarm', vmin=-1, vmax=1, alpha=0.7,
                                  interpolation='nearest',
                                  extent=(-stride / 2, (w - 0.5) * stride,
                                          (h - 0.5) * stride, -stride / 2))
                ax.add_patch(Rectangle(k_box[:2], k_box[2] - k_box[0], k_box[3] - k_box[1],
                                       fill=False, edgecolor='black', linewidth=1))
                peak_y, peak_x = np.unravel_index(np.argmax(heat), heat.shape)
                ax.plot([peak_x * stride], [peak_y * stride], marker='x', color='black',
                        markersize=6)
                ax.set_title(f'{COLUMNS[col]}\nat box {float(sim.at_box[level][row]):+.2f}, '
                             f'max {heat.max():+.2f}', fontsize=8)
            ax.set_xlim(0, size)
            ax.set_ylim(size, 0)
            row_axes.append(ax)
        axes.append(row_axes)
    bar = fig.add_axes([(width_px / DPI - COLORBAR + 0.1) * DPI / width_px, 0.1,
                        0.15 * DPI / width_px, 0.75])
    fig.colorbar(image, cax=bar, label='cosine similarity')

    fig.canvas.draw()
    layout = []
    for row_axes in axes:
        boxes = []
        for ax in row_axes:
            x0, y0, x1, y1 = ax.get_window_extent().extents  # display pixels, origin bottom left
            boxes.append((x0, height_px - y1, x1, height_px - y0))
        layout.append(boxes)
    return fig, layout


def compute(ckpt: str, image: str, config: Optional[str] = None, queries: int = 4,
            size: Optional[int] = None, seed: int = 0) -> dict:
    """Everything the figure shows: the pipeline results, the chosen query
    indices and boxes, and the :class:`Similarity` of both models."""
    import torch
    cfg, state_dict, train_seed = load_config_and_weights(ckpt, config)
    init_seed = train_seed if train_seed is not None else seed
    trained_model = build_model(cfg, init_seed, state_dict)
    initial_model = build_model(cfg, init_seed)

    if size is not None:
        for step in cfg.train_dataloader.dataset.pipeline:
            if str(step['type']).endswith('PairedRandomResizedCrop'):
                step['size'] = size
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    results = draw_views(pipeline_without_packing(cfg), image, queries)
    regions = results[f'regions_{QUERY_LEVEL}']
    chosen = choose_queries(regions['valid'], queries)
    query_boxes = regions['query_boxes'][chosen]
    key_boxes = regions['key_boxes'][chosen]
    return dict(
        results=results, chosen=chosen, query_boxes=query_boxes, key_boxes=key_boxes,
        strides=dict(trained_model.region_strides), init_seed=init_seed,
        trained=region_similarity(trained_model, results['img'], query_boxes, key_boxes),
        initial=region_similarity(initial_model, results['img'], query_boxes, key_boxes))


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('checkpoint', help='a crosscl_mm training checkpoint (.pth)')
    parser.add_argument('image', help='a photo')
    parser.add_argument('--out', required=True, help='folder for the PNG')
    parser.add_argument('--config', help='the model and pipeline config; default: the one '
                        'stored in the checkpoint')
    parser.add_argument('--queries', type=int, default=4, help='query windows (rows)')
    parser.add_argument('--size', type=int, help='view size; default: the config\'s')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the views (and of the random init when the checkpoint '
                        'records no training seed)')
    args = parser.parse_args(argv)
    if args.queries < 1:
        parser.error('--queries must be at least 1')

    from crosscl_mm.converters import CheckpointError
    try:
        found = compute(args.checkpoint, args.image, args.config, args.queries, args.size,
                        args.seed)
    except (CheckpointError, ValueError, FileNotFoundError) as exc:
        print(f'visualize_similarity: {exc}', file=sys.stderr)
        sys.exit(2)
    results = found['results']
    title = (f'{osp.basename(args.checkpoint)} vs. its initialisation (seed {found["init_seed"]})'
             f' on {osp.basename(args.image)}: {results["view_size"]} px views, '
             f'flip={results["flip"]}')
    fig, _ = render(results['img'], found['query_boxes'], found['key_boxes'], found['trained'],
                    found['initial'], found['strides'], title)
    os.makedirs(args.out, exist_ok=True)
    out = osp.join(args.out, f'{osp.splitext(osp.basename(args.image))[0]}_similarity.png')
    fig.savefig(out, dpi=DPI)
    width, height = figure_size_px(len(found['chosen']))
    print(f'{out}: {width}x{height} px, {len(found["chosen"])} query windows '
          f'(P4 windows {found["chosen"].tolist()} of {len(results["regions_p4"]["valid"])})')
    for name in ('trained', 'initial'):
        sim = found[name]
        at_box = ', '.join(f'{lvl.upper()} {sim.at_box[lvl].mean():+.3f}' for lvl in KEY_LEVELS)
        print(f'  {"checkpoint" if name == "trained" else "random init"}: mean similarity '
              f'at the mapped box {at_box}')


if __name__ == '__main__':
    main()
