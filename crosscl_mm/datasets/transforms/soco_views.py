"""SoCo's views of an image and of its object proposals.

Official code: github hologerry/SoCo, ``contrast/data/dataset.py:536-641``
(SoCo), ``:820-942`` (SoCo*), ``contrast/data/bboxs_utils.py``,
``contrast/data/transform.py`` and ``transform_ops.py``. The box arithmetic
is in :mod:`crosscl_mm.datasets.geometry`; docs/soco.md lists what is
matched and what is fixed.
"""
import random
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torchvision.transforms as T
import torchvision.transforms.functional as TF
from mmcv.transforms import BaseTransform
from PIL import Image

from crosscl_mm.registry import TRANSFORMS
from ..geometry import (boxes_as_crop_fractions, clip_boxes_to_crop, crop_overlap,
                        boxes_overlap_region, flip_crop_fractions, fpn_levels_by_size,
                        jitter_boxes, proposal_corners)
from ..proposal_records import ProposalRecordError, read_proposal_record
from .views import resize_crop, sample_crop_box, sample_flip

# The id of the whole-view box that stands in when no proposal survives the
# clipping to a view. Proposal ids are 1..N, so this one matches only its twin
# in the other view. The official code uses 1, proposal 1's id (its B6).
WHOLE_VIEW_ID = 0


@TRANSFORMS.register_module()
class LoadProposals(BaseTransform):
    """Load the proposal record of ``results['proposals_path']`` (see
    :mod:`crosscl_mm.datasets.proposal_records`) into ``results['proposals']``:
    ``(N, 4)`` float64 inclusive corners ``(x1, y1, x2, y2)``, ``x2 = left +
    width - 1``.

    A record of the packed form arrives already read, as
    ``results['proposals_size']`` and ``results['proposals_boxes']``
    (:class:`~crosscl_mm.datasets.ProposalsFolder`); ``proposals_path`` then
    names its shard file.

    Runs after the image is loaded and refuses, naming both files, a record
    whose image size differs from the decoded image (proposals of another
    image, or of the image before its EXIF rotation).
    """

    def transform(self, results: dict) -> dict:
        path = results['proposals_path']
        if 'proposals_boxes' in results:
            (width, height), boxes = results['proposals_size'], results['proposals_boxes']
            where = f'{path} (the record of {results["img_path"]})'
        else:
            (width, height), boxes = read_proposal_record(path)
            where = path
        img_h, img_w = results['img'].shape[:2]
        if (width, height) != (img_w, img_h):
            raise ProposalRecordError(
                f'{where}: field "size" is {width}x{height}, but {results["img_path"]} decodes to '
                f'{img_w}x{img_h}; regenerate the proposals of this folder')
        results['proposals'] = proposal_corners(boxes)
        return results


def select_views(draw_crops: Callable[[], List[Tuple[int, int, int, int]]],
                 proposals: np.ndarray, select_k: int, least_common: int, max_tries: int,
                 choose: Callable[[int, int], np.ndarray]):
    """SoCo's retry law for the crops (``dataset.py:555-575``).

    Draw all crops (``draw_crops()``: view 1 first); for each view ``k > 1``
    keep the proposals that overlap the region view 1 and view ``k`` share,
    and choose ``select_k`` of them (all when fewer; ``choose(n, k)`` returns
    ``k`` distinct row indices below ``n``). Accept when every choice has at least ``least_common``
    proposals; otherwise halve ``least_common`` (not below 1) and draw again.
    After ``max_tries`` draws the last one is used as it is.

    Returns:
        tuple: the crops, and per view ``k > 1`` the chosen proposal rows.
    """
    crops, chosen = None, None
    for _ in range(max_tries):
        crops = draw_crops()
        chosen = []
        for crop in crops[1:]:
            rows = np.flatnonzero(boxes_overlap_region(proposals, crop_overlap(crops[0], crop)))
            # As official (props_utils.py:12-21): all when fewer, else a random draw
            # (which reorders them even when there are exactly select_k).
            chosen.append(rows if len(rows) < select_k else rows[choose(len(rows), select_k)])
        if all(len(rows) >= least_common for rows in chosen):
            break
        least_common = max(least_common // 2, 1)
    return crops, chosen


def clip_with_whole_view(boxes: np.ndarray, ids: np.ndarray, crop) -> Tuple[np.ndarray, np.ndarray]:
    """Boxes clipped to a crop (in its pixels) with their ids; the whole crop,
    id :data:`WHOLE_VIEW_ID`, when none survives (``bboxs_utils.py:55-68``)."""
    clipped, keep = clip_boxes_to_crop(boxes, crop)
    if not keep.any():
        x0, y0, x1, y1 = crop
        return np.array([[0, 0, x1 - x0 - 1, y1 - y0 - 1]], dtype=np.float64), \
            np.array([WHOLE_VIEW_ID])
    return clipped, np.asarray(ids)[keep]


def pad_with_common(boxes: np.ndarray, ids: np.ndarray, common_ids: np.ndarray, padding_k: int,
                    choose: Callable[[int, int], np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
    """Pad a box set to ``padding_k`` rows with copies of its boxes whose id
    the other view of the pair has too, drawn with replacement
    (``bboxs_utils.py:255-259``; ``choose(n, k)``: ``k`` indices below ``n``).

    When the pair shares no id (only possible for degenerate boxes at the
    border, which the official code cannot pad: ``np.random.choice(0)``
    raises), the set's own boxes are drawn instead; they match nothing.
    """
    missing = padding_k - len(boxes)
    if missing <= 0:
        return boxes, ids
    pool = np.flatnonzero(np.isin(ids, common_ids))
    if len(pool) == 0:
        pool = np.arange(len(boxes))
    rows = pool[choose(len(pool), missing)]
    return np.concatenate([boxes, boxes[rows]]), np.concatenate([ids, ids[rows]])


def soco_box_sets(proposals: np.ndarray, crops: Sequence, chosen: Sequence[np.ndarray],
                  jitters: Sequence[np.ndarray], padding_k: int,
                  choose: Callable[[int, int], np.ndarray]):
    """The box sets of SoCo's view pairs, in each view's crop pixels, given
    the draws (``dataset.py:577-607``).

    For the pair (1, k): view 1 gets the chosen proposals jittered by
    ``jitters[k - 2]`` (zero rows: not jittered), view k gets them as they
    are; each set is clipped to its crop (whole-view box if empty) and
    padded to ``padding_k`` rows from the ids both sets hold. Pads are drawn
    in the official order: every view-1 set, then view 2, view 3, ...

    Args:
        proposals: ``(N, 4)`` inclusive corners; proposal ``i`` has id ``i + 1``.
        crops: crop boxes, view 1 first.
        chosen: per view ``k > 1``, the chosen proposal rows.
        jitters: per view ``k > 1``, ``(len(chosen), 4)`` jitter factors.

    Returns:
        tuple: ``(view1_sets, other_sets)``, lists of ``(boxes, ids)`` per pair.
    """
    ids = np.arange(1, len(proposals) + 1)
    view1, others = [], []
    for crop, rows, jitter in zip(crops[1:], chosen, jitters):
        view1.append(clip_with_whole_view(jitter_boxes(proposals[rows], jitter), ids[rows],
                                          crops[0]))
        others.append(clip_with_whole_view(proposals[rows], ids[rows], crop))
    common = [np.asarray(a_ids)[np.isin(a_ids, b_ids)]
              for (_, a_ids), (_, b_ids) in zip(view1, others)]
    view1 = [pad_with_common(b, i, c, padding_k, choose) for (b, i), c in zip(view1, common)]
    others = [pad_with_common(b, i, c, padding_k, choose) for (b, i), c in zip(others, common)]
    return view1, others


def _numpy_choose(n: int, k: int, replace: bool) -> np.ndarray:
    return np.random.choice(n, k, replace=replace)


@TRANSFORMS.register_module()
class SoCoViews(BaseTransform):
    """SoCo's views of an image with the proposals they share.

    Views (official ``transform.py:53-74``, ``:102-124``): view 1 is the
    whole image resized to ``view_sizes[0]`` (aspect ratio not kept); every
    further size in ``view_sizes`` is a RandomResizedCrop (``crop_scale``,
    ``crop_ratio``; 10 tries, then a centre crop) of the image; with
    ``downscaled_view_size`` (SoCo*), one more view is view 2 resized to that
    size before its flip. Each view is flipped on its own with
    ``flip_prob``, its boxes with it.

    Boxes (``dataset.py:536-641``): crops are redrawn by
    :func:`select_views` until each pair (1, k) shares proposals; up to
    ``select_k`` are chosen per pair; view 1's copies are jittered (each box
    with ``jitter_prob``, factors uniform in ``±jitter_ratio``); each set is
    clipped to its crop and padded to ``padding_k`` rows
    (:func:`soco_box_sets`). The downscaled view and its pair reuse view 2's
    boxes and the pair (1, 2)'s view-1 boxes. Each box gets the FPN level
    of its size in view pixels (:func:`~crosscl_mm.datasets.geometry.fpn_levels_by_size`).

    An image without proposals gets one, the whole image (``dataset.py:547``).

    Adds ``img`` (list of uint8 ``(S, S, 3)`` views), ``crop_boxes``
    (``(V, 4)`` in source pixels), ``flips``, ``view_sizes`` and, for each
    pair (1, k), ``regions_1_k`` (view 1's boxes) and ``regions_k``: dicts of
    ``boxes`` (``(padding_k, 4)`` float32 fractions of the view, flipped with
    it, official layout), ``ids`` and ``levels`` (int64, -1: larger than
    every limit). Matching boxes of a pair share an id.

    Args:
        view_sizes: side of view 1, 2, 3, ... (SoCo: 224, 224, 112;
            SoCo*: 224, 224, 192).
        downscaled_view_size: SoCo*'s view 4, view 2 resized to this side
            (112); None for none.
        crop_scale, crop_ratio: RandomResizedCrop ranges of views 2, 3, ...
        flip_prob: probability of each view's flip.
        select_k: proposals chosen per pair.
        padding_k: rows of every box set.
        max_tries: crop draws before the last draw is used as it is; the
            required number of shared proposals starts at
            ``max(padding_k // 2, 1)`` and halves after each failed draw.
        jitter_prob, jitter_ratio: view 1's box jitter.
        level_size_limits: largest box side (``sqrt`` of the area, view
            pixels) pooled on P2, P3, P4, P5.
    """

    def __init__(self, view_sizes: Sequence[int] = (224, 224, 112),
                 downscaled_view_size: Optional[int] = None,
                 crop_scale: Tuple[float, float] = (0.5, 1.0),
                 crop_ratio: Tuple[float, float] = (3. / 4., 4. / 3.),
                 flip_prob: float = 0.5, select_k: int = 4, padding_k: int = 4,
                 max_tries: int = 5, jitter_prob: float = 0.5, jitter_ratio: float = 0.1,
                 level_size_limits: Sequence[float] = (48, 96, 192, 224)) -> None:
        if len(view_sizes) < 2:
            raise ValueError(f'SoCoViews: view_sizes needs view 1 and at least one crop, '
                             f'got {view_sizes}')
        self.view_sizes = tuple(int(s) for s in view_sizes)
        self.downscaled_view_size = downscaled_view_size
        self.crop_scale = tuple(crop_scale)
        self.crop_ratio = tuple(crop_ratio)
        self.flip_prob = flip_prob
        self.select_k = select_k
        self.padding_k = padding_k
        self.max_tries = max_tries
        self.jitter_prob = jitter_prob
        self.jitter_ratio = jitter_ratio
        self.level_size_limits = tuple(level_size_limits)

    def _draw_jitter(self, count: int) -> np.ndarray:
        jitter = np.zeros((count, 4))
        for i in range(count):
            if random.random() < self.jitter_prob:
                jitter[i] = np.random.uniform(-self.jitter_ratio, self.jitter_ratio, 4)
        return jitter

    def transform(self, results: dict) -> dict:
        img = Image.fromarray(results['img'])
        width, height = img.size
        proposals = results.get('proposals')
        if proposals is None or len(proposals) == 0:
            proposals = np.array([[0, 0, width - 1, height - 1]], dtype=np.float64)
        whole = (0, 0, width, height)

        def draw_crops():
            return [whole] + [sample_crop_box(img, self.crop_scale, self.crop_ratio)
                              for _ in self.view_sizes[1:]]

        crops, chosen = select_views(
            draw_crops, proposals, self.select_k, max(self.padding_k // 2, 1), self.max_tries,
            lambda n, k: _numpy_choose(n, k, replace=False))
        jitters = [self._draw_jitter(len(rows)) for rows in chosen]
        view1_sets, other_sets = soco_box_sets(
            proposals, crops, chosen, jitters, self.padding_k,
            lambda n, k: _numpy_choose(n, k, replace=True))

        views = [resize_crop(img, crop, size) for crop, size in zip(crops, self.view_sizes)]
        sizes = list(self.view_sizes)
        if self.downscaled_view_size is not None:
            size = self.downscaled_view_size
            views.append(TF.resize(views[1], [size, size],
                                   interpolation=T.InterpolationMode.BILINEAR))
            crops.append(crops[1])
            sizes.append(size)
            view1_sets.append(view1_sets[0])
            other_sets.append(other_sets[0])
        flips = [sample_flip(self.flip_prob) for _ in views]

        for k, (view1_set, other_set) in enumerate(zip(view1_sets, other_sets), start=2):
            results[f'regions_1_{k}'] = self._pack(view1_set, crops[0], sizes[0], flips[0])
            results[f'regions_{k}'] = self._pack(other_set, crops[k - 1], sizes[k - 1],
                                                 flips[k - 1])
        results['img'] = [np.ascontiguousarray(np.asarray(v)[:, ::-1]) if flip else np.asarray(v)
                          for v, flip in zip(views, flips)]
        results['crop_boxes'] = np.asarray(crops, dtype=np.float64)
        results['flips'] = flips
        results['view_sizes'] = sizes
        results['img_shape'] = (sizes[0], sizes[0])
        return results

    def _pack(self, box_set, crop, size: int, flip: bool) -> Dict[str, np.ndarray]:
        boxes, ids = box_set
        fractions = boxes_as_crop_fractions(boxes, crop).astype(np.float32)
        return dict(boxes=flip_crop_fractions(fractions) if flip else fractions,
                    ids=np.asarray(ids, dtype=np.int64),
                    levels=fpn_levels_by_size(boxes, crop, size, self.level_size_limits))

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(view_sizes={self.view_sizes}, '
                f'downscaled_view_size={self.downscaled_view_size}, crop_scale={self.crop_scale}, '
                f'crop_ratio={self.crop_ratio}, flip_prob={self.flip_prob}, '
                f'select_k={self.select_k}, padding_k={self.padding_k}, '
                f'max_tries={self.max_tries}, jitter_prob={self.jitter_prob}, '
                f'jitter_ratio={self.jitter_ratio}, level_size_limits={self.level_size_limits})')


@TRANSFORMS.register_module()
class CutoutInBoxes(BaseTransform):
    """Cut a square out of some of the views' boxes: SoCo's 100-epoch recipe
    (official ``transform_ops.py:322-366``, ``RandomCutoutInBbox``), which
    crashes at the official commit (bug B1), implemented as intended.

    For every row of the view's box set (padded copies included, as
    official), with probability ``prob``: a square of area
    ``U(area_ratio) * w * h`` (``w = x2 - x1 + 1`` in view pixels, side
    rounded), centred on a pixel drawn uniformly in the box, clipped to the
    view, is filled with ``fill``. The official code zeroes the normalised
    tensor, i.e. paints the normalisation mean; ``fill`` defaults to the
    ImageNet mean rounded to uint8. Runs after the photometric ops.

    Args:
        views: indices of the views to cut (the official 100-epoch recipe:
            views 2 and 3, i.e. ``(1, 2)``); view ``k``'s boxes are
            ``regions_{k + 1}``.
    """

    def __init__(self, views: Sequence[int] = (1, 2), prob: float = 0.5,
                 area_ratio: Tuple[float, float] = (0.1, 0.3),
                 fill: Sequence[int] = (124, 116, 104)) -> None:
        self.views = tuple(views)
        self.prob = prob
        self.area_ratio = tuple(area_ratio)
        self.fill = np.asarray(fill, dtype=np.uint8)

    def transform(self, results: dict) -> dict:
        views = list(results['img'])
        for i in self.views:
            view = views[i].copy()
            size_h, size_w = view.shape[:2]
            for x1, y1, x2, y2 in results[f'regions_{i + 1}']['boxes']:
                if random.random() >= self.prob:
                    continue
                x1, x2, y1, y2 = x1 * size_w, x2 * size_w, y1 * size_h, y2 * size_h
                area = random.uniform(*self.area_ratio) * (x2 - x1 + 1) * (y2 - y1 + 1)
                half = int(round(float(np.sqrt(area)))) // 2
                cx = random.randint(int(x1), max(int(x1), int(x2)))
                cy = random.randint(int(y1), max(int(y1), int(y2)))
                view[max(cy - half, 0):min(cy + half, size_h - 1) + 1,
                     max(cx - half, 0):min(cx + half, size_w - 1) + 1] = self.fill
            views[i] = view
        results['img'] = views
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(views={self.views}, prob={self.prob}, '
                f'area_ratio={self.area_ratio}, fill={self.fill.tolist()})')
