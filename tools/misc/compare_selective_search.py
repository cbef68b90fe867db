"""Compare SoCo's selective search (ours) with maintained implementations.

    python tools/misc/compare_selective_search.py [IMAGE ...] [--max-side N]

Runs, on each image at full resolution (or shrunk to ``--max-side``), one
process, one thread:

- ``ours``: :mod:`crosscl_mm.datasets.proposals` (the official SoCo recipe);
- ``official``: PyPI ``selectivesearch`` 0.4 (AlpacaDB, the code SoCo
  copied) with SoCo's one change, the texture histogram over ``(0, 255)``
  instead of ``(0, 1)`` (SoCo ``selective_search/selective_search.py:140``;
  the two files differ otherwise only in comments, names and SoCo's extra
  return value): it must give exactly our boxes;
- ``alpacadb``: ``selectivesearch`` 0.4 as published;
- ``opencv-fast`` / ``opencv-quality``: OpenCV contrib's
  ``ximgproc.segmentation`` selective search (Uijlings et al.'s strategies
  on its own graph segmentation), boxes converted to SoCo's convention
  (``width - 1``).

and prints time per image and box statistics: boxes before and after SoCo's
filter (``ratio3size0308`` with its fallbacks), images left without a box,
the median relative size ``sqrt(w h / W H)`` of the kept boxes, and how well
each method's kept boxes cover ours (mean over our boxes of the best IoU,
share with IoU >= 0.7).

It needs packages that crosscl_mm does not depend on; run it from a
throwaway environment, e.g.::

    python3.11 -m venv /tmp/ss-venv
    /tmp/ss-venv/bin/pip install "numpy<2" scikit-image pillow selectivesearch \\
        "opencv-contrib-python-headless<4.11"
    OMP_NUM_THREADS=1 /tmp/ss-venv/bin/python tools/misc/compare_selective_search.py

Our two modules are loaded from their files (they need only numpy, scipy
and scikit-image), so the rest of crosscl_mm need not be installed there.
"""
import argparse
import importlib.util
import os
import os.path as osp
import time
import warnings
from typing import Dict, List

import numpy as np

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# scikit-image's colour photographs (tests/conftest.py PHOTOS plus the second motorcycle).
DEFAULT_PHOTOS = ('astronaut.png', 'chelsea.png', 'coffee.png', 'rocket.jpg',
                  'motorcycle_left.png', 'motorcycle_right.png', 'hubble_deep_field.jpg',
                  'ihc.png', 'retina.jpg')


def _load(name: str):
    path = osp.join(REPO, 'crosscl_mm', 'datasets', 'proposals', name + '.py')
    spec = importlib.util.spec_from_file_location(f'soco_proposals_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _read(path: str, max_side: int) -> np.ndarray:
    from PIL import Image
    with Image.open(path) as img:
        img = img.convert('RGB')
        if max_side and max(img.size) > max_side:
            img.thumbnail((max_side, max_side), Image.BILINEAR)
        return np.asarray(img)


def _alpacadb(texture_range_fixed: bool):
    import selectivesearch.selectivesearch as ss

    def texture_hist_0_255(img):  # SoCo selective_search.py:120-145
        hist = np.concatenate([np.histogram(img[:, c], 10, (0.0, 255.0))[0] for c in range(3)])
        return hist / len(img)

    def run(img):
        original = ss._calc_texture_hist
        if texture_range_fixed:
            ss._calc_texture_hist = texture_hist_0_255
        try:
            _, regions = ss.selective_search(img, scale=300, sigma=0.9, min_size=100)
        finally:
            ss._calc_texture_hist = original
        return np.array([r['rect'] for r in regions], dtype=np.int64).reshape(-1, 4)
    return run


def _opencv(mode: str):
    import cv2
    cv2.setNumThreads(1)

    def run(img):
        search = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
        search.setBaseImage(np.ascontiguousarray(img[:, :, ::-1]))
        getattr(search, f'switchToSelectiveSearch{mode}')()
        rects = np.asarray(search.process(), dtype=np.int64).reshape(-1, 4)
        return np.concatenate([rects[:, :2], rects[:, 2:] - 1], axis=1)  # SoCo: max - min
    return run


def best_iou(ours: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """For each of ``ours``, the best IoU with ``theirs`` (pixel-inclusive
    boxes ``left .. left + width``)."""
    if not len(ours):
        return np.zeros(0)
    if not len(theirs):
        return np.zeros(len(ours))
    a = np.concatenate([ours[:, :2], ours[:, :2] + ours[:, 2:] + 1], 1)[:, None].astype(float)
    b = np.concatenate([theirs[:, :2], theirs[:, :2] + theirs[:, 2:] + 1], 1)[None].astype(float)
    inter = (np.clip(np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2], b[..., :2]),
                     0, None).prod(-1))
    area_a = (a[..., 2:] - a[..., :2]).prod(-1)
    area_b = (b[..., 2:] - b[..., :2]).prod(-1)
    return (inter / (area_a + area_b - inter)).max(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('images', nargs='*', help='image files (default: scikit-image photos)')
    parser.add_argument('--max-side', type=int, default=0,
                        help='shrink larger images to this side first (default: full size)')
    parser.add_argument('--skip', nargs='*', default=[],
                        help='methods to leave out (official, alpacadb, opencv-fast, ...)')
    args = parser.parse_args()
    # AlpacaDB's code runs LBP on float images; the codes are those of the uint8 image.
    warnings.filterwarnings('ignore', message='Applying `local_binary_pattern`')
    if not args.images:
        import skimage
        root = osp.join(osp.dirname(skimage.__file__), 'data')
        args.images = [osp.join(root, n) for n in DEFAULT_PHOTOS if osp.exists(osp.join(root, n))]
    search = _load('selective_search')
    filters = _load('filters')
    methods = {'ours': search.selective_search, 'official': _alpacadb(True),
               'alpacadb': _alpacadb(False), 'opencv-fast': _opencv('Fast'),
               'opencv-quality': _opencv('Quality')}
    methods = {k: v for k, v in methods.items() if k not in args.skip}

    stats: Dict[str, Dict[str, List]] = {m: {} for m in methods}
    for path in args.images:
        img = _read(path, args.max_side)
        size = (img.shape[1], img.shape[0])
        kept_ours = None
        line = [f'{osp.basename(path)} {size[0]}x{size[1]}:']
        for name, run in methods.items():
            start, cpu_start = time.perf_counter(), time.process_time()
            raw = run(img)
            seconds = time.perf_counter() - start
            cpu = time.process_time() - cpu_start
            kept = filters.filter_soco_proposals(raw, size)
            s = stats[name]
            s.setdefault('seconds', []).append(seconds)
            s.setdefault('cpu', []).append(cpu)
            s.setdefault('raw', []).append(len(raw))
            s.setdefault('kept', []).append(len(kept))
            s.setdefault('relative', []).extend(
                np.sqrt(kept[:, 2] * kept[:, 3] / (size[0] * size[1])).tolist())
            if name == 'ours':
                kept_ours, raw_ours = kept, raw
            else:
                s.setdefault('equal', []).append(raw.shape == raw_ours.shape
                                                 and bool((raw == raw_ours).all()))
                s.setdefault('iou', []).extend(best_iou(kept_ours, kept).tolist())
            line.append(f'{name} {seconds:.2f}s (cpu {cpu:.2f}s) {len(raw)}->{len(kept)}')
        print('  '.join(line), flush=True)

    n = len(args.images)
    print(f'\n{n} images, one process, one thread each (OMP_NUM_THREADS='
          f'{os.environ.get("OMP_NUM_THREADS", "unset")})\n')
    print('| method | s / image (CPU s) | boxes | kept by the filter | images with no kept box '
          '| median sqrt(rel. area) of kept | same boxes as ours | mean best IoU with ours '
          '| our kept boxes matched at IoU >= 0.7 |')
    print('|---|---|---|---|---|---|---|---|---|')
    for name, s in stats.items():
        iou = np.array(s.get('iou', [1.0]))  # ours against itself
        equal = f'{sum(s["equal"])}/{n}' if 'equal' in s else '-'
        relative = np.median(s['relative']) if s['relative'] else float('nan')
        print(f'| {name} | {np.mean(s["seconds"]):.2f} ({np.mean(s["cpu"]):.2f}) '
              f'| {np.mean(s["raw"]):.0f} '
              f'| {np.mean(s["kept"]):.1f} | {sum(k == 0 for k in s["kept"])}/{n} '
              f'| {relative:.2f} | {equal} | {iou.mean():.2f} | {(iou >= 0.7).mean():.2f} |')

if __name__ == '__main__':
    main()
