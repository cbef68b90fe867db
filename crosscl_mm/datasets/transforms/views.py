import random
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as TF
from mmcv.transforms import BaseTransform
from PIL import Image, ImageFilter, ImageOps

from crosscl_mm.registry import TRANSFORMS


def sample_crop_box(img: Image.Image, scale: Sequence[float],
                    ratio: Sequence[float]) -> Tuple[int, int, int, int]:
    """Draw one RandomResizedCrop region of ``img`` (torchvision's law and
    torch's RNG; SoCo's official ``RandomResizedCropParams`` draws the same
    law with python's ``random``) and return it as a crop box ``(x0, y0,
    x1, y1)`` with exclusive right and bottom edges.

    Every view sampler of the package draws its crops here: CrossCL's two
    views after one shared flip (:class:`PairedRandomResizedCrop`), SoCo's
    views each with its own flip (:class:`~.soco_views.SoCoViews`).
    """
    top, left, h, w = T.RandomResizedCrop.get_params(img, list(scale), list(ratio))
    return left, top, left + w, top + h


def sample_flip(prob: float) -> bool:
    """Draw one horizontal-flip decision (torch's RNG), for every sampler."""
    return bool(torch.rand(1).item() < prob)


@TRANSFORMS.register_module()
class PairedRandomResizedCrop(BaseTransform):
    """Two views of one image: a shared horizontal flip, then an independent
    RandomResizedCrop per view whose box is recorded.

    The flip is applied to the whole image before cropping and is the same for
    both views, so a box maps from one view to the other by the crop boxes
    alone (MoCo v2 flips each view independently, which would break the
    correspondence). Crops use torchvision's sampling and PIL bilinear
    resizing, as the reference does.

    Adds ``img`` (list of two ``(size, size, 3)`` uint8 arrays: query, key),
    ``crop_boxes`` (``(2, 4)`` float, ``x0, y0, x1, y1`` in the flipped image),
    ``flip`` and ``view_size``.

    Args:
        size: side of each view. It lives in shared memory, so
            :meth:`set_view_size` (used by multi-scale training) reaches
            dataloader workers that are already running.
        scale, ratio: RandomResizedCrop's area and aspect-ratio ranges.
        flip_prob: probability of the shared horizontal flip.
    """

    def __init__(self, size: int = 224, scale: Tuple[float, float] = (0.2, 1.0),
                 ratio: Tuple[float, float] = (3. / 4., 4. / 3.), flip_prob: float = 0.5) -> None:
        self._size = torch.zeros(1, dtype=torch.int64).share_memory_()
        self.set_view_size(size)
        self.scale = tuple(scale)
        self.ratio = tuple(ratio)
        self.flip_prob = flip_prob

    @property
    def size(self) -> int:
        return int(self._size[0])

    def set_view_size(self, size: int) -> None:
        if int(size) <= 0:
            raise ValueError(f'view size must be positive, got {size}')
        self._size[0] = int(size)

    def transform(self, results: dict) -> dict:
        size = self.size
        img = Image.fromarray(results['img'])
        flip = sample_flip(self.flip_prob)
        if flip:
            img = TF.hflip(img)
        views, boxes = [], []
        for _ in range(2):
            box = sample_crop_box(img, self.scale, self.ratio)
            views.append(np.asarray(resize_crop(img, box, size)))
            boxes.append(box)
        results['img'] = views
        results['crop_boxes'] = np.asarray(boxes, dtype=np.float64)
        results['flip'] = flip
        results['view_size'] = size
        results['img_shape'] = (size, size)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(size={self.size}, scale={self.scale}, '
                f'ratio={self.ratio}, flip_prob={self.flip_prob})')


def resize_crop(img: Image.Image, box: Sequence[int], size: int) -> Image.Image:
    """The crop box ``(x0, y0, x1, y1)`` of ``img`` resized to ``size x size``
    (PIL bilinear, as torchvision's ``resized_crop`` and the references)."""
    x0, y0, x1, y1 = box
    return TF.resized_crop(img, y0, x0, y1 - y0, x1 - x0, [size, size],
                           interpolation=T.InterpolationMode.BILINEAR)


PHOTOMETRIC_OPS = ('blur', 'jitter', 'gray', 'solarize')


@TRANSFORMS.register_module()
class ViewColorAugment(BaseTransform):
    """Photometric augmentation, drawn independently for each view.

    The ops run in ``ops`` order; the default is MoCo v2 in the CrossCL
    reference's order: Gaussian blur (PIL, sigma uniform in ``blur_sigma``)
    with ``blur_prob``; torchvision ColorJitter with ``jitter_prob``;
    RandomGrayscale with ``gray_prob``. SoCo (BYOL's recipe, official
    ``contrast/data/transform.py:59-73``) runs ``('jitter', 'gray', 'blur',
    'solarize')`` with blur probability 1.0 on its first view and 0.1 plus
    ``ImageOps.solarize`` (threshold 128) with ``solarize_prob`` 0.2 on the
    others: two instances, each with its ``views``.

    An entry of ``results['img']`` that is a stack of patches ``(P, h, w, 3)``
    (DetCo's jigsaw patches) gets one draw per patch.

    Args:
        ops: names from ``'blur'``, ``'jitter'``, ``'gray'``, ``'solarize'``.
        views: indices of the views to augment; ``None`` for all.
    """

    def __init__(self, blur_prob: float = 0.5, blur_sigma: Sequence[float] = (0.1, 2.0),
                 jitter_prob: float = 0.8, brightness: float = 0.4, contrast: float = 0.4,
                 saturation: float = 0.4, hue: float = 0.1, gray_prob: float = 0.2,
                 solarize_prob: float = 0.0, ops: Sequence[str] = ('blur', 'jitter', 'gray'),
                 views: Optional[Sequence[int]] = None) -> None:
        unknown = [op for op in ops if op not in PHOTOMETRIC_OPS]
        if unknown:
            raise ValueError(f'ViewColorAugment: unknown ops {unknown}; '
                             f'choose from {PHOTOMETRIC_OPS}')
        self.blur_prob = blur_prob
        self.blur_sigma = tuple(blur_sigma)
        self.jitter_prob = jitter_prob
        self.jitter = T.ColorJitter(brightness, contrast, saturation, hue)
        self.grayscale = T.RandomGrayscale(gray_prob)
        self.solarize_prob = solarize_prob
        self.ops = tuple(ops)
        self.views = None if views is None else tuple(views)

    def _augment(self, view: np.ndarray) -> np.ndarray:
        if view.ndim == 4:
            return np.stack([self._augment(patch) for patch in view])
        img = Image.fromarray(view)
        for op in self.ops:
            if op == 'blur':
                if random.random() < self.blur_prob:
                    img = img.filter(ImageFilter.GaussianBlur(
                        radius=random.uniform(*self.blur_sigma)))
            elif op == 'jitter':
                if random.random() < self.jitter_prob:
                    img = self.jitter(img)
            elif op == 'gray':
                img = self.grayscale(img)
            elif random.random() < self.solarize_prob:
                img = ImageOps.solarize(img, 128)
        return np.asarray(img)

    def transform(self, results: dict) -> dict:
        chosen = range(len(results['img'])) if self.views is None else self.views
        views = list(results['img'])
        for i in chosen:
            views[i] = self._augment(views[i])
        results['img'] = views
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(ops={self.ops}, views={self.views}, '
                f'blur_prob={self.blur_prob}, blur_sigma={self.blur_sigma}, '
                f'jitter_prob={self.jitter_prob}, jitter={self.jitter}, '
                f'grayscale={self.grayscale}, solarize_prob={self.solarize_prob})')
