"""Pure geometry of the views: sliding-window regions and how a box moves
from one random crop of an image to another (CrossCL), and how an object
proposal moves from the image into SoCo's views.

Boxes are ``(x0, y0, x1, y1)`` in pixels. A crop box is the region of the
source image that a view was cut from, with exclusive right and bottom edges
(``x1 = left + width``); the view is that region resized to ``size x size``.

CrossCL: both views of one image share a single horizontal-flip decision,
applied to the source image before cropping, so no flip appears in the
mapping (:func:`sliding_windows`, :func:`map_boxes_between_crops`,
:func:`boxes_inside_view`). Which windows count as positives is decided by
comparing mapped edges with the view's border, so a window whose edge lands
on the border in exact arithmetic is kept or dropped by the last bit of a
float; these three functions therefore evaluate their formulas in the
reference's order of floating-point operations (yanjk3/CrossCL,
crosscl/datasets.py), in float64 as the reference's numpy arrays are, and
make the same decision on every crop pair.

SoCo: each view is flipped on its own after cropping, and boxes follow the
official code's conventions (github hologerry/SoCo, ``contrast/data/
bboxs_utils.py``): a proposal is ``(x1, y1, x2, y2)`` with *inclusive* right
and bottom pixels (``x2 = left + width - 1``); a box in a view is a fraction
of the crop (``x / crop width``, so ``[0, 1]`` spans the view and a box's
right edge is one source pixel short, bug-for-bug); a flip is ``x -> 1 - x``
on those fractions (:func:`proposal_corners` to :func:`fpn_levels_by_size`).
"""
from typing import Optional, Sequence, Tuple

import numpy as np

__all__ = ['sliding_windows', 'map_boxes_between_crops', 'boxes_inside_view', 'proposal_corners',
           'crop_overlap', 'boxes_overlap_region', 'jitter_boxes', 'clip_boxes_to_crop',
           'boxes_as_crop_fractions', 'flip_crop_fractions', 'fpn_levels_by_size', 'grid_cells',
           'boxes_at_offsets', 'view_boxes_to_image']


def sliding_windows(size: float, window: float, stride: float, grid: int = 6) -> np.ndarray:
    """Square windows on a ``grid x grid`` lattice of a ``size x size`` view.

    Window ``(i, j)`` is ``(j * stride, i * stride, j * stride + window,
    i * stride + window)``; windows whose right or bottom edge reaches the
    view border (``>= size``) are dropped, as in the reference
    (crosscl/datasets.py:30-40), so a default 6x6 lattice at window 48 /
    stride 32 on 224 keeps all 36 windows.

    The reference scales the lattice with the view as ``48 * size / 224.``
    and ``32 * size / 224.`` (datasets.py:28); pass ``window`` and ``stride``
    computed that way (``length * size / base_size``, not
    ``length * (size / base_size)``) to get its windows bit for bit.

    Returns:
        np.ndarray: ``(K, 4)`` float64 boxes in row-major lattice order.
    """
    starts = np.arange(grid, dtype=np.float64) * stride
    y0, x0 = np.meshgrid(starts, starts, indexing='ij')
    boxes = np.stack([x0, y0, x0 + window, y0 + window], axis=-1).reshape(-1, 4)
    keep = ~((boxes[:, 2] >= size) | (boxes[:, 3] >= size))
    return boxes[keep]


def map_boxes_between_crops(boxes: np.ndarray, src_crop: np.ndarray, dst_crop: np.ndarray,
                            size: float) -> np.ndarray:
    """Map boxes from one resized crop to another crop of the same image.

    Each coordinate goes view -> source image -> destination view as
    ``a = (r_s - l_s) * x / size + l_s`` and then
    ``(a - l_d) * size / (r_d - l_d)`` (per axis, with the crops' left/right
    or top/bottom edges), in exactly this order of operations, as the
    reference's ``anchor_mapping`` (crosscl/datasets.py:93-119).

    Args:
        boxes: ``(K, 4)`` boxes in pixels of the source view (``size x size``).
        src_crop: ``(4,)`` region of the source image the source view shows.
        dst_crop: ``(4,)`` region of the source image the destination view shows.
        size: side of both views in pixels.

    Returns:
        np.ndarray: ``(K, 4)`` float64 boxes in pixels of the destination
        view. They may lie partly or wholly outside it; see
        :func:`boxes_inside_view`.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    src_crop = np.asarray(src_crop, dtype=np.float64)
    dst_crop = np.asarray(dst_crop, dtype=np.float64)
    src_origin, src_extent = src_crop[:2], src_crop[2:] - src_crop[:2]
    dst_origin, dst_extent = dst_crop[:2], dst_crop[2:] - dst_crop[:2]
    xy = boxes.reshape(-1, 2, 2)                         # (K, corner, xy)
    in_image = src_extent * xy / size + src_origin       # view -> source image
    in_dst = (in_image - dst_origin) * size / dst_extent  # source image -> view
    return in_dst.reshape(-1, 4)


def boxes_inside_view(boxes: np.ndarray, size: float) -> np.ndarray:
    """Whether each box lies inside a ``size x size`` view.

    The reference drops a mapped window when
    ``x0 < 0 or y0 < 0 or x1 >= size or y1 >= size``
    (crosscl/datasets.py:117); this is that rule, negated.
    """
    boxes = np.asarray(boxes)
    return ~((boxes[:, 0] < 0) | (boxes[:, 1] < 0) | (boxes[:, 2] >= size) | (boxes[:, 3] >= size))


# DetCo's jigsaw patches (PIRL's local views): a local view is cut into a
# grid x grid lattice of cells and a smaller patch is taken inside each cell.
# A view here is a crop box of the source image resized to ``size x size``
# and then, if ``flipped``, mirrored horizontally.

def grid_cells(size: float, grid: int = 3) -> np.ndarray:
    """The ``grid x grid`` cells of a ``size x size`` view, row-major.

    Cell ``(i, j)`` (row ``i``, column ``j``) is
    ``(j * c, i * c, (j + 1) * c, (i + 1) * c)`` with ``c = size / grid``:
    85-pixel cells on DetCo's 255-pixel local view (paper section 3.4).

    Returns:
        np.ndarray: ``(grid * grid, 4)`` float64 boxes; cell ``i * grid + j``.
    """
    edges = np.arange(grid + 1, dtype=np.float64) * (size / grid)
    y0, x0 = np.meshgrid(edges[:-1], edges[:-1], indexing='ij')
    y1, x1 = np.meshgrid(edges[1:], edges[1:], indexing='ij')
    return np.stack([x0, y0, x1, y1], axis=-1).reshape(-1, 4)


def boxes_at_offsets(origins: np.ndarray, offsets: np.ndarray, side: float) -> np.ndarray:
    """``side x side`` boxes whose top-left corners are ``origins`` moved by
    ``offsets``: the random crop inside each cell.

    Args:
        origins: ``(K, 2)`` or ``(K, 4)`` boxes/points; only ``x0, y0`` are used.
        offsets: ``(K, 2)`` ``(dx, dy)`` of each box from its origin.
        side: side of each box in pixels.

    Returns:
        np.ndarray: ``(K, 4)`` float64 boxes ``(x0, y0, x0 + side, y0 + side)``.
    """
    corner = np.asarray(origins, dtype=np.float64)[:, :2] + np.asarray(offsets, dtype=np.float64)
    return np.concatenate([corner, corner + side], axis=1)


def view_boxes_to_image(boxes: np.ndarray, crop: np.ndarray, size: float,
                        flipped: bool = False) -> np.ndarray:
    """Map boxes from a view back into the source image.

    The view is the region ``crop`` of the image resized to ``size x size``
    (exclusive right/bottom edges), then mirrored when ``flipped``. A view
    x-coordinate ``u`` of a flipped view is ``size - u`` before the flip, so a
    box's left edge in the image comes from its right edge in the view.

    Returns:
        np.ndarray: ``(K, 4)`` boxes in pixels of the source image.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
    if flipped:
        boxes[:, [0, 2]] = size - boxes[:, [2, 0]]
    crop = np.asarray(crop, dtype=np.float64)
    scale = (crop[2:] - crop[:2]) / size
    xy = boxes.reshape(-1, 2, 2) * scale + crop[:2]
    return xy.reshape(-1, 4)


def proposal_corners(boxes: np.ndarray) -> np.ndarray:
    """``(left, top, width, height)`` proposals as inclusive corners
    ``(x1, y1, x2, y2)`` with ``x2 = left + width - 1`` (official
    ``contrast/data/props_utils.py:36-43``).

    Returns:
        np.ndarray: ``(N, 4)`` float64.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:] - 1], axis=1)


def _inclusive(crop) -> np.ndarray:
    x0, y0, x1, y1 = np.asarray(crop, dtype=np.float64)
    return np.array([x0, y0, x1 - 1, y1 - 1])


def crop_overlap(crop_a, crop_b) -> Optional[np.ndarray]:
    """The region two crops share, as inclusive corners, or ``None``.

    Crops overlap only when they share more than an edge pixel: the
    official test is strict on inclusive corners
    (``bboxs_utils.py:32-42``, ``cal_overlap_params``).
    """
    a, b = _inclusive(crop_a), _inclusive(crop_b)
    if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
        return np.concatenate([np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])])
    return None


def boxes_overlap_region(boxes: np.ndarray, region: Optional[np.ndarray]) -> np.ndarray:
    """Which inclusive-corner boxes overlap an inclusive region strictly
    (``bboxs_utils.py:45-52``, ``is_overlap``); none when ``region`` is None."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if region is None:
        return np.zeros(len(boxes), dtype=bool)
    return ((region[0] < boxes[:, 2]) & (boxes[:, 0] < region[2])
            & (region[1] < boxes[:, 3]) & (boxes[:, 1] < region[3]))


def jitter_boxes(boxes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Move and resize inclusive-corner boxes by fractions of their size.

    With ``w = x2 - x1 + 1``, ``h = y2 - y1 + 1`` and factors ``(j0..j3)``
    (``bboxs_utils.py:200-226``, ``jitter_props``)::

        x1' = x1 + j0 * w            y1' = y1 + j1 * h
        x2' = x1' + w * (1 + j2) - 1 y2' = y1' + h * (1 + j3) - 1

    A row of zero factors leaves its box exactly as it was.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    factors = np.asarray(factors, dtype=np.float64).reshape(-1, 4)
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    x1 = boxes[:, 0] + factors[:, 0] * w
    y1 = boxes[:, 1] + factors[:, 1] * h
    return np.stack([x1, y1, x1 + (w + factors[:, 2] * w) - 1,
                     y1 + (h + factors[:, 3] * h) - 1], axis=1)


def clip_boxes_to_crop(boxes: np.ndarray, crop) -> Tuple[np.ndarray, np.ndarray]:
    """Intersect inclusive-corner boxes with a crop and express them in the
    crop's pixels (``bboxs_utils.py:18-29, 55-68``, ``clip_bboxs``).

    A box is kept when it overlaps the crop's inclusive corners strictly.

    Returns:
        tuple: the kept boxes, ``(K, 4)`` float64 relative to the crop's
        top-left pixel, and the ``(N,)`` bool mask of kept boxes.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    region = _inclusive(crop)
    keep = boxes_overlap_region(boxes, region)
    kept = boxes[keep]
    clipped = np.concatenate([np.maximum(kept[:, :2], region[:2]),
                              np.minimum(kept[:, 2:], region[2:])], axis=1)
    return clipped - np.tile(region[:2], 2), keep


def boxes_as_crop_fractions(boxes: np.ndarray, crop) -> np.ndarray:
    """Boxes in a crop's pixels as fractions of the crop: ``x / width``,
    ``y / height`` (``bboxs_utils.py:331-345``, ``bboxs_to_tensor``).

    Times the view size they are pixels of the view, whatever its size; the
    inclusive right edge makes a box one source pixel narrower than the
    pixels it covers (matched on purpose, see docs/soco.md).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x0, y0, x1, y1 = np.asarray(crop, dtype=np.float64)
    return boxes / np.array([x1 - x0, y1 - y0, x1 - x0, y1 - y0])


def flip_crop_fractions(boxes: np.ndarray) -> np.ndarray:
    """Boxes given as crop fractions, after a horizontal flip of their view:
    ``x1' = 1 - x2``, ``x2' = 1 - x1`` (``transform_ops.py:306-309``). Keeps
    the dtype, so float32 boxes flip exactly as the official tensors do."""
    boxes = np.asarray(boxes)
    one = boxes.dtype.type(1)
    return np.stack([one - boxes[:, 2], boxes[:, 1], one - boxes[:, 0], boxes[:, 3]], axis=1)


def fpn_levels_by_size(boxes: np.ndarray, crop, view_size: int,
                       size_limits: Sequence[float] = (48, 96, 192, 224)) -> np.ndarray:
    """The FPN level each box is pooled for, by its size in view pixels.

    As the official pipeline (``bboxs_utils.py:100-106, 378-398``): boxes in
    the crop's pixels are scaled to the view (``x / crop width * view_size``)
    and truncated to integers; the size is ``sqrt((x2 - x1 + 1) * (y2 - y1 +
    1))``; the level is the first ``j`` with ``size <= size_limits[j]``
    (0 = P2, 1 = P3, ...), or -1 when the box is larger than every limit.
    This is not the FPN paper's rule (``k = 4 + log2(sqrt(wh) / 224)``).

    Returns:
        np.ndarray: ``(N,)`` int64 levels.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x0, y0, x1, y1 = np.asarray(crop, dtype=np.float64)
    scale = np.array([x1 - x0, y1 - y0, x1 - x0, y1 - y0])
    pixels = (boxes / scale * view_size).astype(np.int64)
    size = np.sqrt(((pixels[:, 2] - pixels[:, 0] + 1) * (pixels[:, 3] - pixels[:, 1] + 1))
                   .astype(np.float64))
    fits = size[:, None] <= np.asarray(size_limits, dtype=np.float64)[None, :]
    return np.where(fits.any(axis=1), fits.argmax(axis=1), -1).astype(np.int64)
