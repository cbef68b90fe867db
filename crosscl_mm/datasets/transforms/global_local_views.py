"""DetCo's views (paper section 3.4): two global views ``I_q``, ``I_k``
(MoCo v2's augmentation at 224 px, optionally RandAugment) and two local
patch sets ``P_q``, ``P_k`` (PIRL's jigsaw: a crop of at least 60% of the
image at 255 px, the same colour augmentation, a 3x3 grid of 85 px cells, a
random 64 px patch in each cell, the nine patches shuffled).

In a pipeline::

    LoadImageRGB -> MultiViewRandomResizedCrop (4 views) -> [ViewRandAugment on 0, 1]
    -> ViewColorAugment (all 4) -> JigsawPatches (views 2, 3) -> PackRegionPairInputs
"""
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as TF
from mmcv.transforms import BaseTransform
from PIL import Image

from crosscl_mm.registry import TRANSFORMS
from ..geometry import boxes_at_offsets, grid_cells, view_boxes_to_image
from .views import resize_crop, sample_crop_box, sample_flip


@TRANSFORMS.register_module()
class MultiViewRandomResizedCrop(BaseTransform):
    """Several views of one image, each with its own RandomResizedCrop and its
    own horizontal flip, as MoCo v2 draws its two crops (and PIRL its local
    crop). Unlike :class:`PairedRandomResizedCrop` no flip is shared: nothing
    maps boxes between these views.

    Each view is the crop box of the image resized (PIL bilinear) to
    ``size x size``, then mirrored with ``flip_prob``. Adds ``img`` (list of
    ``(size, size, 3)`` uint8 arrays, in the order of ``sizes``),
    ``crop_boxes`` (``(V, 4)`` float, ``x0, y0, x1, y1`` in the image),
    ``flips`` (``(V,)`` bool) and ``view_sizes`` (``(V,)`` int).

    Args:
        sizes: side of each view. DetCo: ``(224, 224, 255, 255)`` for
            ``I_q, I_k, P_q, P_k``.
        scales: RandomResizedCrop's area range, one ``(min, max)`` per view.
            DetCo: ``(0.2, 1.0)`` global (MoCo v2), ``(0.6, 1.0)`` local
            ("at least 60% of the image", PIRL).
        ratio: RandomResizedCrop's aspect-ratio range (all views).
        flip_prob: probability of each view's horizontal flip.
    """

    def __init__(self, sizes: Sequence[int] = (224, 224, 255, 255),
                 scales: Sequence[Tuple[float, float]] = ((0.2, 1.0), (0.2, 1.0),
                                                          (0.6, 1.0), (0.6, 1.0)),
                 ratio: Tuple[float, float] = (3. / 4., 4. / 3.), flip_prob: float = 0.5) -> None:
        self.sizes = tuple(int(s) for s in sizes)
        self.scales = tuple(tuple(s) for s in scales)
        if len(self.scales) != len(self.sizes):
            raise ValueError(f'MultiViewRandomResizedCrop: {len(self.sizes)} sizes but '
                             f'{len(self.scales)} scales; give one (min, max) per view')
        if any(s <= 0 for s in self.sizes):
            raise ValueError(f'MultiViewRandomResizedCrop: sizes must be positive, '
                             f'got {self.sizes}')
        self.ratio = tuple(ratio)
        self.flip_prob = flip_prob

    def transform(self, results: dict) -> dict:
        img = Image.fromarray(results['img'])
        views, boxes, flips = [], [], []
        for size, scale in zip(self.sizes, self.scales):
            box = sample_crop_box(img, scale, self.ratio)
            view = resize_crop(img, box, size)
            flip = sample_flip(self.flip_prob)
            views.append(np.asarray(TF.hflip(view) if flip else view))
            boxes.append(box)
            flips.append(flip)
        results['img'] = views
        results['crop_boxes'] = np.asarray(boxes, dtype=np.float64)
        results['flips'] = np.asarray(flips, dtype=bool)
        results['view_sizes'] = np.asarray(self.sizes, dtype=np.int64)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(sizes={self.sizes}, scales={self.scales}, '
                f'ratio={self.ratio}, flip_prob={self.flip_prob})')


@TRANSFORMS.register_module()
class ViewRandAugment(BaseTransform):
    """torchvision's RandAugment on some of the views, each drawn independently.

    DetCo's ICCV text: "Rand-Augmentation is also used on global view"; it
    gives no N or M, so the defaults are RandAugment's ImageNet ResNet-50
    setting (N=2, M=9), also torchvision's defaults.

    Args:
        num_ops: operations per image (N).
        magnitude: magnitude of every operation (M, out of ``num_magnitude_bins - 1``).
        views: indices in ``results['img']`` to augment (the global views).
    """

    def __init__(self, num_ops: int = 2, magnitude: int = 9, views: Sequence[int] = (0, 1)) -> None:
        self.views = tuple(views)
        self.rand_augment = T.RandAugment(num_ops=num_ops, magnitude=magnitude)

    def transform(self, results: dict) -> dict:
        for i in self.views:
            results['img'][i] = np.asarray(self.rand_augment(Image.fromarray(results['img'][i])))
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.rand_augment}, views={self.views})'


@TRANSFORMS.register_module()
class JigsawPatches(BaseTransform):
    """Cut views into shuffled jigsaw patches: DetCo's local patch sets.

    A ``size x size`` view is divided into ``grid x grid`` cells
    (:func:`grid_cells`); a ``patch_size`` square is cropped at a random
    offset inside each cell ("to avoid continuity between patches"), and the
    patches are stacked in a random order. The view in ``results['img']``
    becomes a ``(grid * grid, patch_size, patch_size, 3)`` uint8 stack.

    Adds, for the cut views in the order of ``views``:

    - ``patch_boxes``: ``(V, grid * grid, 4)`` each stacked patch's box in its view;
    - ``patch_cells``: ``(V, grid * grid)`` the cell (row-major) each stacked
      patch comes from, i.e. the permutation;
    - ``patch_boxes_in_image``: the boxes in the source image (when the view
      was made by :class:`MultiViewRandomResizedCrop`, which records
      ``crop_boxes`` and ``flips``).

    Args:
        views: indices in ``results['img']`` of the views to cut (DetCo:
            ``(2, 3)``, the local views ``P_q`` and ``P_k``).
        grid: cells per side (3).
        patch_size: side of a patch (64, in 85 px cells of a 255 px view).
        shared_order: one permutation for all cut views of an image. The
            paper draws the two local transforms independently, and both
            unofficial ports shuffle each view on its own, so by default each
            view gets its own order (``False``).
    """

    def __init__(self, views: Sequence[int] = (2, 3), grid: int = 3, patch_size: int = 64,
                 shared_order: bool = False) -> None:
        self.views = tuple(views)
        self.grid = int(grid)
        self.patch_size = int(patch_size)
        self.shared_order = shared_order

    def _cell_side(self, view: np.ndarray, index: int) -> int:
        size = view.shape[0]
        if view.shape[1] != size or size % self.grid:
            raise ValueError(f'JigsawPatches: view {index} is {view.shape[1]}x{size} px; it must '
                             f'be square with a side divisible by grid={self.grid}')
        cell = size // self.grid
        if cell < self.patch_size:
            raise ValueError(f'JigsawPatches: {cell} px cells of view {index} are smaller than '
                             f'patch_size={self.patch_size}')
        return cell

    def transform(self, results: dict) -> dict:
        n = self.grid * self.grid
        order: Optional[torch.Tensor] = None
        boxes, cells_used, in_image = [], [], []
        for index in self.views:
            view = results['img'][index]
            cell = self._cell_side(view, index)
            if order is None or not self.shared_order:
                order = torch.randperm(n)
            offsets = torch.randint(0, cell - self.patch_size + 1, (n, 2)).numpy()
            patch_boxes = boxes_at_offsets(grid_cells(view.shape[0], self.grid), offsets,
                                           self.patch_size)[order.numpy()]
            x0, y0 = patch_boxes[:, 0].astype(int), patch_boxes[:, 1].astype(int)
            p = self.patch_size
            results['img'][index] = np.stack([view[y:y + p, x:x + p] for x, y in zip(x0, y0)])
            boxes.append(patch_boxes)
            cells_used.append(order.numpy().copy())
            if 'crop_boxes' in results and 'flips' in results:
                in_image.append(view_boxes_to_image(patch_boxes, results['crop_boxes'][index],
                                                    view.shape[0], bool(results['flips'][index])))
        results['patch_boxes'] = np.stack(boxes)
        results['patch_cells'] = np.stack(cells_used)
        if in_image:
            results['patch_boxes_in_image'] = np.stack(in_image)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(views={self.views}, grid={self.grid}, '
                f'patch_size={self.patch_size}, shared_order={self.shared_order})')
