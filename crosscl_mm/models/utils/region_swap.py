"""RegionCL's region swap and region pooling, as pure functions.

RegionCL (Xu et al., ECCV 2022) cuts one box out of every image of a batch,
at the same place and size for the whole batch, and pastes into each image
the box of a partner image. A backbone then sees the composites; the
"paste" feature of a composite is the mean of its last feature map (C5,
stride 32) over the box cells, its "canvas" feature the mean over the other
cells. Two samplers and two pairings exist in the code behind the published
numbers:

- RegionCL-M (official, Annbless/RegionCL ``openselfsup/models/RegionCLM.py:
  165-197``): :func:`sample_official_box` (sizes 32 x {3, 4, 5} px, a start
  rounded half-to-even to the 32 px grid and then clamped to ``W - 1 -
  size``, which puts about 87% of boxes off the grid on some axis) and the
  fixed reversal :func:`reversal_pairing`;
- RegionCL-D (CoinCheung/DenseCL ``densecl/cutmix.py:21-34``):
  :func:`sample_grid_box` (sizes 3-5 cells, start cell uniform in
  ``[0, n - size - 1]``, always on the grid) and :func:`random_pairing`.

A box is ``(x0, y0, width, height)`` in input pixels. Its feature cells are
:func:`box_cells` (``floor(px / stride)``, the official ``.long()`` of
``px / 32``, ``RegionCLM.py:197,219``); with an off-grid start the pasted
pixels and the cells do not coincide, as in the official run.

Draws come from torch's default CPU generator (or ``generator``), in the
official order, so a seeded call gives the official box.
"""
from typing import NamedTuple, Optional, Tuple

import torch
from torch import Tensor

__all__ = ['SwapBox', 'sample_official_box', 'sample_grid_box', 'reversal_pairing',
           'random_pairing', 'swap_regions', 'box_cells', 'region_pool', 'region_contrast_rows',
           'PASTE_INTRA_NEGATIVES', 'BOX_SAMPLERS', 'PAIRINGS', 'check_official_box_fits',
           'check_grid_box_fits', 'check_pairing']


class SwapBox(NamedTuple):
    """A swap box in input pixels: left, top, width, height."""
    x0: int
    y0: int
    width: int
    height: int


def _check_cells(min_cells: int, max_cells: int) -> None:
    if not 1 <= min_cells <= max_cells:
        raise ValueError(f'box cells must satisfy 1 <= min_cells <= max_cells, '
                         f'got {min_cells}, {max_cells}')


def check_official_box_fits(height: int, width: int, min_cells: int, max_cells: int,
                            stride: int) -> None:
    """Refuse images the official sampler cannot serve (B10): sides up to
    the largest box make its clamp ``W - 1 - size`` negative."""
    _check_cells(min_cells, max_cells)
    largest = stride * max_cells
    if height <= largest or width <= largest:
        raise ValueError(f'RegionCL official box sampler: boxes up to {largest} px '
                         f'({max_cells} cells of {stride} px) need images of at least '
                         f'{largest + 1} px, got {height}x{width}')


def check_grid_box_fits(height: int, width: int, min_cells: int, max_cells: int,
                        stride: int) -> None:
    """Refuse images the grid sampler cannot serve: sides not on the grid,
    or with no more than ``max_cells`` cells."""
    _check_cells(min_cells, max_cells)
    if height % stride or width % stride:
        raise ValueError(f'RegionCL grid box sampler: image sides must be multiples of '
                         f'{stride}, got {height}x{width}')
    if height // stride <= max_cells or width // stride <= max_cells:
        raise ValueError(f'RegionCL grid box sampler: boxes up to {max_cells} cells need more '
                         f'than {max_cells} cells ({stride * (max_cells + 1)} px) per side, '
                         f'got {height}x{width}')


def sample_official_box(height: int, width: int, min_cells: int = 3, max_cells: int = 5,
                        stride: int = 32, generator: Optional[torch.Generator] = None) -> SwapBox:
    """RegionCL-M's box (``RegionCLM.py:178-187``, recipe cutMixLower 3,
    cutMixUpper 6).

    ``w = stride * U{min_cells..max_cells}``, then ``h`` likewise; then
    ``x0 = min(round_half_even(U{0..W-1} / stride) * stride, W - 1 - w)``,
    then ``y0`` likewise. The clamp's ``W - 1`` (bug B2) makes a clamped
    start ``W - 1 - w``, one pixel short of the grid; the rounding (B3)
    weights the grid starts unevenly. Both are reproduced.

    Raises:
        ValueError: an image side not larger than the largest box (B10:
            the official clamp would go negative).
    """
    check_official_box_fits(height, width, min_cells, max_cells, stride)
    box_w = stride * int(torch.randint(min_cells, max_cells + 1, (1,), generator=generator))
    box_h = stride * int(torch.randint(min_cells, max_cells + 1, (1,), generator=generator))

    def start(side: int, size: int) -> int:
        raw = torch.randint(0, side, (1,), generator=generator).float()
        snapped = int(torch.round(raw / stride)) * stride  # torch.round: half to even
        return min(snapped, side - 1 - size)

    x0 = start(width, box_w)
    y0 = start(height, box_h)
    return SwapBox(x0, y0, box_w, box_h)


def sample_grid_box(height: int, width: int, min_cells: int = 3, max_cells: int = 5,
                    stride: int = 32, generator: Optional[torch.Generator] = None) -> SwapBox:
    """RegionCL-D's box (``cutmix.py:21-30``): ``h, w`` cells drawn together
    from ``U{min_cells..max_cells}``, start cells ``U{0..n-size-1}`` (row
    first; the exclusive bound keeps the box off the last row and column),
    all on the ``stride`` grid.

    Raises:
        ValueError: a side not a multiple of ``stride`` or with no more
            than ``max_cells`` cells.
    """
    check_grid_box_fits(height, width, min_cells, max_cells, stride)
    rows, cols = height // stride, width // stride
    cells_h, cells_w = torch.randint(min_cells, max_cells + 1, (2,), generator=generator).tolist()
    row = int(torch.randint(0, rows - cells_h, (1,), generator=generator))
    col = int(torch.randint(0, cols - cells_w, (1,), generator=generator))
    return SwapBox(col * stride, row * stride, cells_w * stride, cells_h * stride)


def reversal_pairing(batch_size: int) -> Tensor:
    """RegionCL-M's partners: composite ``i`` gets the box of image
    ``B - 1 - i`` (``RegionCLM.py:176``, named ``randperm`` there). An odd
    batch would pair its middle image with itself (B4), so it is refused."""
    check_pairing('reversal', batch_size)
    return torch.arange(batch_size - 1, -1, -1)


def check_pairing(pairing: str, batch_size: int) -> None:
    """Refuse an odd batch under the reversal pairing (B4)."""
    if pairing == 'reversal' and batch_size % 2:
        raise ValueError(f'RegionCL reversal pairing needs an even per-GPU batch (its middle '
                         f'image would swap with itself), got {batch_size}')


def random_pairing(batch_size: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """RegionCL-D's partners: composite ``i`` gets the box of image
    ``perm[i]``, ``perm = randperm(B)`` (``cutmix.py:32``; fixed points pair
    an image with itself)."""
    return torch.randperm(batch_size, generator=generator)


def swap_regions(images: Tensor, box: SwapBox, partner: Tensor) -> Tensor:
    """Composites: ``out[i] = images[i]`` with the box replaced by the same
    box of ``images[partner[i]]`` (``RegionCLM.py:194-195``, ``cutmix.py:33-34``)."""
    x0, y0, w, h = box
    out = images.clone()
    out[:, :, y0:y0 + h, x0:x0 + w] = images[partner.to(images.device), :, y0:y0 + h, x0:x0 + w]
    return out


def box_cells(box: SwapBox, stride: int = 32) -> SwapBox:
    """The box in feature cells: ``floor(x0 / stride)``, ``floor(y0 /
    stride)``, ``width // stride``, ``height // stride`` (official: the
    float box divided by 32, then ``.long()``, ``RegionCLM.py:197,219``).
    A start at 127 px gives cell 3: the cells sit one cell up/left of most
    of the pasted pixels (B2)."""
    x0, y0, w, h = box
    return SwapBox(x0 // stride, y0 // stride, w // stride, h // stride)


def region_pool(feats: Tensor, cells: SwapBox) -> Tuple[Tensor, Tensor]:
    """Paste and canvas features of composites.

    ``paste = mean of feats over the box cells``, ``canvas = mean over the
    other cells`` (``necks.py:230-235``; ``resnet.py:236-241``). No RoI
    pooling. Summed in float32 (mixed precision), returned in ``feats.dtype``.

    Args:
        feats: ``(N, C, H, W)`` maps (C5).
        cells: the box in cells of this map (:func:`box_cells`).

    Returns:
        tuple: ``paste`` and ``canvas``, each ``(N, C)``.
    """
    x0, y0, w, h = cells
    rows, cols = feats.shape[-2:]
    if x0 < 0 or y0 < 0 or w < 1 or h < 1 or x0 + w > cols or y0 + h > rows:
        raise ValueError(f'RegionCL: box cells {tuple(cells)} (x0, y0, w, h) do not fit a '
                         f'{rows}x{cols} feature map')
    if w * h == rows * cols:
        raise ValueError(f'RegionCL: box cells {tuple(cells)} cover the whole map; '
                         f'the canvas would be empty')
    mask = torch.zeros(rows, cols, dtype=torch.float32, device=feats.device)
    mask[y0:y0 + h, x0:x0 + w] = 1
    with torch.autocast(device_type=feats.device.type, enabled=False):
        f = feats.float()
        total = f.sum(dim=(2, 3))
        paste_sum = (f * mask).sum(dim=(2, 3))
        paste = paste_sum / (w * h)
        canvas = (total - paste_sum) / (rows * cols - w * h)
    return paste.to(feats.dtype), canvas.to(feats.dtype)


PASTE_INTRA_NEGATIVES = ('as_released', 'corrected')


def region_contrast_rows(canvas: Tensor, paste: Tensor, partner: Tensor,
                         paste_intra: str = 'as_released') -> Tuple[Tensor, Tensor]:
    """The 2B query rows of the region term and each row's intra negative.

    Row ``i < B`` is canvas ``c_i`` (of composite ``i``, mostly image ``i``),
    whose intra negative is the paste lying on it, ``p_i``. Row ``B + j`` is
    image ``j``'s pasted region, ``p[argsort(partner)][j]``, whose intra
    negative is a canvas: ``'corrected'`` takes the canvas it lies on,
    ``c[argsort(partner)][j]``; ``'as_released'`` takes ``c[partner][j]``,
    as both released codes do (``necks.py:238``, ``RegionCLM.py:258``;
    ``cutmix.py:50``). The two agree when ``partner`` is its own inverse
    (the reversal of RegionCL-M) and differ otherwise (RegionCL-D's random
    permutation). Each row's positive is the key of image ``i`` (``j``), so
    positives are ``cat([k, k])``. Intra negatives are detached.

    Returns:
        tuple: ``queries`` ``(2B, C)`` and ``intra_negatives`` ``(2B, C)``.
    """
    if paste_intra not in PASTE_INTRA_NEGATIVES:
        raise ValueError(f'paste_intra must be one of {PASTE_INTRA_NEGATIVES}, got {paste_intra!r}')
    partner = partner.to(canvas.device)
    source_to_composite = torch.argsort(partner)
    paste_by_source = paste[source_to_composite]
    canvas_under = canvas[partner] if paste_intra == 'as_released' else canvas[source_to_composite]
    queries = torch.cat([canvas, paste_by_source])
    intra = torch.cat([paste, canvas_under]).detach()
    return queries, intra


# name -> (sampler, its check of the image size)
BOX_SAMPLERS = dict(official=(sample_official_box, check_official_box_fits),
                    grid=(sample_grid_box, check_grid_box_fits))
PAIRINGS = dict(reversal=reversal_pairing, random=random_pairing)
