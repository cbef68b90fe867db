"""Selective search exactly as SoCo computes its proposals.

SoCo (github hologerry/SoCo) runs AlpacaDB's Python selective search
(``selective_search/selective_search.py``, the PyPI ``selectivesearch`` 0.4
with the texture-histogram range fixed) on every training image at full
resolution with ``scale=300, sigma=0.9, min_size=100``
(``selective_search/generate_imagenet_ss_proposals.py:22-23, 45-47``).
This module computes the same boxes in the same order, with numpy doing the
per-pixel and per-pair work the official code does in Python loops:

1. Felzenszwalb-Huttenlocher segmentation by scikit-image on
   ``img_as_float(img)`` (``selective_search.py:17-33``).
2. Per initial region: bounding box, pixel count, a colour histogram of
   25 bins on each HSV channel and a texture histogram of 10 bins on the
   8-neighbour LBP code of each RGB channel, both over the range
   ``(0, 255)`` and L1-normalised (``:73-145, 148-190``). HSV comes from
   ``rgb2hsv`` of the 0-255 image, so hue and saturation lie in ``[0, 1]``
   and always fall into their first bin: only the value channel
   discriminates (a quirk of the official code, kept).
3. Neighbours: pairs ``(a, b)``, ``a`` before ``b`` in the order regions
   first appear in raster order, where a corner of ``b``'s box lies strictly
   inside ``a``'s box (``:193-214``; the test is not symmetric, kept).
4. Similarity = colour + texture histogram intersections + size
   ``1 - (s_a + s_b) / HW`` + fill ``1 - (bbox(a u b) - s_a - s_b) / HW``,
   summed in that order (``:36-70``).
5. Greedy grouping: merge the most similar pair (ties: the pair inserted
   last), drop every pair of either region, pair the merged region with
   their other partners in the order those pairs were inserted; until no
   pair is left (``:217-231, 282-305``).
6. Every initial region (first-appearance order), then every merged region
   (merge order), as ``(min_x, min_y, max_x - min_x, max_y - min_y)``
   (``:307-317``): widths without +1.

Equal results need equal arithmetic: histogram bins follow
``numpy.histogram``'s edges, intersections are summed sequentially as
Python's ``sum`` does, and similarities are added in the official order, so
ties and near-ties break the same way.
"""
import heapq
import warnings
from typing import Dict, List, NamedTuple

import numpy as np

__all__ = ['Regions', 'felzenszwalb_labels', 'initial_regions', 'selective_search']

COLOUR_BINS = 25
TEXTURE_BINS = 10
HISTOGRAM_RANGE = (0.0, 255.0)


class Regions(NamedTuple):
    """Initial regions in the official (first-appearance) order.

    ``boxes`` are ``(min_x, min_y, max_x, max_y)`` with inclusive ends,
    ``sizes`` pixel counts, ``colour`` ``(n, 75)`` and ``texture``
    ``(n, 30)`` L1-normalised histograms.
    """
    boxes: np.ndarray
    sizes: np.ndarray
    colour: np.ndarray
    texture: np.ndarray


def felzenszwalb_labels(img: np.ndarray, scale: float = 300, sigma: float = 0.9,
                        min_size: int = 100) -> np.ndarray:
    """Felzenszwalb-Huttenlocher segments of an ``(H, W, 3)`` uint8 RGB image,
    computed as the official code does (``selective_search.py:24-26``)."""
    from skimage.segmentation import felzenszwalb
    from skimage.util import img_as_float
    return felzenszwalb(img_as_float(img), scale=scale, sigma=sigma, min_size=min_size)


def _bin_index(values: np.ndarray, bins: int) -> np.ndarray:
    """The bin of each value in ``numpy.histogram(values, bins,
    HISTOGRAM_RANGE)``: ``edges[k] <= v < edges[k + 1]``, the last bin closed,
    ``-1`` outside the range."""
    edges = np.linspace(*HISTOGRAM_RANGE, bins + 1)
    index = np.searchsorted(edges, values, side='right') - 1
    index[values == edges[-1]] = bins - 1
    index[(values < edges[0]) | (values > edges[-1]) | np.isnan(values)] = -1
    return index


def _region_histograms(labels: np.ndarray, channels: np.ndarray, bins: int,
                       sizes: np.ndarray) -> np.ndarray:
    """``(n, C * bins)``: per region, the concatenated histograms of each
    channel of ``channels`` ``(H, W, C)`` divided by the region's pixel count
    (``selective_search.py:84-99, 128-145``)."""
    n = len(sizes)
    flat_labels = labels.ravel()
    hists = []
    for c in range(channels.shape[2]):
        index = _bin_index(channels[:, :, c].ravel(), bins)
        inside = index >= 0
        counts = np.bincount(flat_labels[inside] * bins + index[inside], minlength=n * bins)
        hists.append(counts.reshape(n, bins))
    return np.concatenate(hists, axis=1).astype(np.float64) / sizes[:, None]


def initial_regions(img: np.ndarray, labels: np.ndarray) -> Regions:
    """Boxes, sizes and histograms of the segments ``labels`` (``0..n-1``) of
    ``img``, in the order the official code meets them: by first pixel in
    raster order (``selective_search.py:148-190``)."""
    from scipy.ndimage import find_objects
    from skimage.color import rgb2hsv
    from skimage.feature import local_binary_pattern

    labels = np.asarray(labels, dtype=np.int64)
    n = int(labels.max()) + 1
    sizes = np.bincount(labels.ravel(), minlength=n)
    if (sizes == 0).any():
        raise ValueError('segment labels must be 0..n-1 without gaps')
    slices = find_objects(labels + 1)
    boxes = np.array([(sx.start, sy.start, sx.stop - 1, sy.stop - 1) for sy, sx in slices],
                     dtype=np.int64)
    # The official image is uint8 RGB appended to a float64 label channel, so
    # rgb2hsv sees 0-255 floats: hue and saturation always fall into bin 0
    # (docs/soco_proposals.md).
    rgb = img[:, :, :3].astype(np.float64)
    colour = _region_histograms(labels, rgb2hsv(rgb), COLOUR_BINS, sizes)
    # LBP converts any input to float64; the uint8 image gives the same codes
    # without the warning about float images.
    lbp = np.stack([local_binary_pattern(img[:, :, c], 8, 1.0) for c in range(3)], axis=2)
    texture = _region_histograms(labels, lbp, TEXTURE_BINS, sizes)

    _, first_pixel = np.unique(labels.ravel(), return_index=True)
    order = np.argsort(first_pixel, kind='stable')
    return Regions(boxes[order], sizes[order], colour[order], texture[order])


def _neighbour_pairs(boxes: np.ndarray, block: int = 512) -> np.ndarray:
    """``(P, 2)`` pairs ``(a, b)``, ``a < b``, in the official loop order,
    where a corner of box ``b`` lies strictly inside box ``a``
    (``selective_search.py:195-212``)."""
    n = len(boxes)
    x0, y0, x1, y1 = boxes.T
    pairs = []
    for start in range(0, n, block):
        a = slice(start, min(start + block, n))

        def inside(bx, by):
            return ((x0[a, None] < bx[None]) & (bx[None] < x1[a, None])
                    & (y0[a, None] < by[None]) & (by[None] < y1[a, None]))

        hit = inside(x0, y0) | inside(x1, y1) | inside(x0, y1) | inside(x1, y0)
        hit &= np.arange(n)[None] > np.arange(start, a.stop)[:, None]
        rows, cols = np.nonzero(hit)
        pairs.append(np.stack([rows + start, cols], axis=1))
    return np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64)


def _similarities(a: np.ndarray, b: np.ndarray, boxes: np.ndarray, sizes: np.ndarray,
                  colour: np.ndarray, texture: np.ndarray, image_area: int) -> np.ndarray:
    """Similarity of the region pairs ``(a[k], b[k])``
    (``selective_search.py:36-70``). Histogram intersections are running sums
    (``cumsum``) to add in the order of Python's ``sum``."""
    sim_colour = np.cumsum(np.minimum(colour[a], colour[b]), axis=1)[:, -1]
    sim_texture = np.cumsum(np.minimum(texture[a], texture[b]), axis=1)[:, -1]
    both = sizes[a] + sizes[b]
    sim_size = 1.0 - both / image_area
    bbox_area = ((np.maximum(boxes[a, 2], boxes[b, 2]) - np.minimum(boxes[a, 0], boxes[b, 0]))
                 * (np.maximum(boxes[a, 3], boxes[b, 3]) - np.minimum(boxes[a, 1], boxes[b, 1])))
    sim_fill = 1.0 - (bbox_area - both) / image_area
    return sim_colour + sim_texture + sim_size + sim_fill


def _group(regions: Regions, image_area: int) -> np.ndarray:
    """Greedy hierarchical grouping (``selective_search.py:277-305``);
    returns the ``(min_x, min_y, max_x, max_y)`` boxes of the initial regions
    followed by those of the merged regions in merge order.

    The official loop re-sorts every pair for each merge and rescans them all
    to find those of the merged regions. Here the pairs sit in a heap keyed by
    (similarity, insertion number), which picks the same pair as the
    official ``sorted(...)[-1]`` (its sort is stable, so the last inserted of
    equal maxima wins), and each region keeps the set of its live pairs.
    """
    n = len(regions.sizes)
    capacity = max(2 * n - 1, 1)
    boxes = np.zeros((capacity, 4), np.int64)
    sizes = np.zeros(capacity, np.int64)
    colour = np.zeros((capacity, regions.colour.shape[1]))
    texture = np.zeros((capacity, regions.texture.shape[1]))
    boxes[:n], sizes[:n], colour[:n], texture[:n] = regions

    pair_regions: List[tuple] = []  # insertion number -> (a, b)
    live: set = set()  # insertion numbers of the pairs not yet dropped
    live_pairs: Dict[int, set] = {r: set() for r in range(n)}
    heap: list = []

    def add_pairs(a: np.ndarray, b: np.ndarray) -> None:
        sims = _similarities(a, b, boxes, sizes, colour, texture, image_area)
        for ra, rb, sim in zip(a.tolist(), b.tolist(), sims.tolist()):
            number = len(pair_regions)
            pair_regions.append((ra, rb))
            live.add(number)
            live_pairs[ra].add(number)
            live_pairs[rb].add(number)
            heapq.heappush(heap, (-sim, -number))

    pairs = _neighbour_pairs(regions.boxes)
    add_pairs(pairs[:, 0], pairs[:, 1])

    merged = n
    while heap:
        _, number = heapq.heappop(heap)
        number = -number
        if number not in live:
            continue  # dropped when one of its regions was merged
        i, j = pair_regions[number]
        t = merged
        merged += 1
        boxes[t, :2] = np.minimum(boxes[i, :2], boxes[j, :2])
        boxes[t, 2:] = np.maximum(boxes[i, 2:], boxes[j, 2:])
        sizes[t] = sizes[i] + sizes[j]
        colour[t] = (colour[i] * sizes[i] + colour[j] * sizes[j]) / sizes[t]
        texture[t] = (texture[i] * sizes[i] + texture[j] * sizes[j]) / sizes[t]
        live_pairs[t] = set()

        partners: Dict[int, None] = {}  # ordered set: first pairing wins
        for old in sorted(live_pairs[i] | live_pairs[j]):
            a, b = pair_regions[old]
            live.discard(old)
            live_pairs[a].discard(old)
            live_pairs[b].discard(old)
            if old != number:
                partners[b if a in (i, j) else a] = None
        del live_pairs[i], live_pairs[j]
        if partners:
            others = np.fromiter(partners, np.int64, len(partners))
            add_pairs(np.full(len(others), t), others)
    return boxes[:merged]


def selective_search(img: np.ndarray, scale: float = 300, sigma: float = 0.9,
                     min_size: int = 100) -> np.ndarray:
    """SoCo's selective-search boxes of one image, unfiltered.

    Args:
        img: ``(H, W, 3)`` uint8 RGB image at full resolution.
        scale, sigma, min_size: Felzenszwalb parameters; the defaults are
            SoCo's (``generate_imagenet_ss_proposals.py:22-23, 47``).

    Returns:
        ``(N, 4)`` int64 ``(left, top, width, height)`` with
        ``width = max_x - min_x`` (official convention, no +1): the initial
        regions, then the merged ones, in the official order.
    """
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f'expected an (H, W, 3) uint8 RGB image, got {img.dtype} {img.shape}')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)  # rgb2hsv's 0/0 on black pixels
        regions = initial_regions(img, felzenszwalb_labels(img, scale, sigma, min_size))
    corners = _group(regions, img.shape[0] * img.shape[1])
    return np.concatenate([corners[:, :2], corners[:, 2:] - corners[:, :2]], axis=1)
