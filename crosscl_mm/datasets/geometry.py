"""Pure geometry of CrossCL's paired views: sliding-window regions and how a
box moves from one random crop of an image to another.

Boxes are ``(x0, y0, x1, y1)`` in pixels. A crop box is the region of the
(already flipped) source image that a view was cut from, with exclusive right
and bottom edges (``x1 = left + width``); the view is that region resized to
``size x size``. Both views of one image share a single horizontal-flip
decision, applied to the source image before cropping, so no flip appears in
the mapping.
"""
import numpy as np

__all__ = ['sliding_windows', 'map_boxes_between_crops', 'boxes_inside_view']


def sliding_windows(size: float, window: float, stride: float, grid: int = 6) -> np.ndarray:
    """Square windows on a ``grid x grid`` lattice of a ``size x size`` view.

    Window ``(i, j)`` starts at ``(j * stride, i * stride)``; windows whose
    right or bottom edge reaches the view border (``>= size``) are dropped,
    as in the reference implementation, so a default 6x6 lattice at
    window 48 / stride 32 on 224 keeps all 36 windows.

    Returns:
        np.ndarray: ``(K, 4)`` float64 boxes in row-major lattice order.
    """
    starts = np.arange(grid, dtype=np.float64) * stride
    y0, x0 = np.meshgrid(starts, starts, indexing='ij')
    boxes = np.stack([x0, y0, x0 + window, y0 + window], axis=-1).reshape(-1, 4)
    keep = (boxes[:, 2] < size) & (boxes[:, 3] < size)
    return boxes[keep]


def map_boxes_between_crops(boxes: np.ndarray, src_crop: np.ndarray, dst_crop: np.ndarray,
                            size: float) -> np.ndarray:
    """Map boxes from one resized crop to another crop of the same image.

    Args:
        boxes: ``(K, 4)`` boxes in pixels of the source view (``size x size``).
        src_crop: ``(4,)`` region of the source image the source view shows.
        dst_crop: ``(4,)`` region of the source image the destination view shows.
        size: side of both views in pixels.

    Returns:
        np.ndarray: ``(K, 4)`` boxes in pixels of the destination view. They
        may lie partly or wholly outside it; see :func:`boxes_inside_view`.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    src_crop = np.asarray(src_crop, dtype=np.float64)
    dst_crop = np.asarray(dst_crop, dtype=np.float64)
    src_origin, src_extent = src_crop[:2], src_crop[2:] - src_crop[:2]
    dst_origin, dst_extent = dst_crop[:2], dst_crop[2:] - dst_crop[:2]
    xy = boxes.reshape(-1, 2, 2)                         # (K, corner, xy)
    in_image = xy * (src_extent / size) + src_origin     # view -> source image
    in_dst = (in_image - dst_origin) * (size / dst_extent)
    return in_dst.reshape(-1, 4)


def boxes_inside_view(boxes: np.ndarray, size: float) -> np.ndarray:
    """Whether each box lies inside a ``size x size`` view.

    The reference keeps a mapped window only when ``x0, y0 >= 0`` and
    ``x1, y1 < size``; the same rule is used here so both agree on which
    regions are positives.
    """
    boxes = np.asarray(boxes)
    return (boxes[:, 0] >= 0) & (boxes[:, 1] >= 0) & (boxes[:, 2] < size) & (boxes[:, 3] < size)


# DetCo's jigsaw patches (PIRL's local views): a local view is cut into a
# grid x grid lattice of cells and a smaller patch is taken inside each cell.
# A view here is a crop box of the source image resized to ``size x size``
# and then, if ``flipped``, mirrored horizontally.

__all__ += ['grid_cells', 'boxes_at_offsets', 'view_boxes_to_image']


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
