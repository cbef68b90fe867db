import random
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as TF
from mmcv.transforms import BaseTransform
from PIL import Image, ImageFilter

from crosscl_mm.registry import TRANSFORMS


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
        flip = bool(torch.rand(1).item() < self.flip_prob)
        if flip:
            img = TF.hflip(img)
        views, boxes = [], []
        for _ in range(2):
            top, left, h, w = T.RandomResizedCrop.get_params(img, list(self.scale), list(self.ratio))
            view = TF.resized_crop(img, top, left, h, w, [size, size],
                                   interpolation=T.InterpolationMode.BILINEAR)
            views.append(np.asarray(view))
            boxes.append((left, top, left + w, top + h))
        results['img'] = views
        results['crop_boxes'] = np.asarray(boxes, dtype=np.float64)
        results['flip'] = flip
        results['view_size'] = size
        results['img_shape'] = (size, size)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(size={self.size}, scale={self.scale}, '
                f'ratio={self.ratio}, flip_prob={self.flip_prob})')


@TRANSFORMS.register_module()
class ViewColorAugment(BaseTransform):
    """MoCo v2's photometric augmentation, drawn independently for each view.

    In the reference's order: Gaussian blur (PIL, sigma uniform in
    ``blur_sigma``) with ``blur_prob``; torchvision ColorJitter with
    ``jitter_prob``; RandomGrayscale with ``gray_prob``. ``views`` picks the
    entries of ``results['img']`` to augment (all by default); an entry that
    is a stack of patches ``(P, h, w, 3)`` gets one draw per patch.
    """

    def __init__(self, blur_prob: float = 0.5, blur_sigma: Sequence[float] = (0.1, 2.0),
                 jitter_prob: float = 0.8, brightness: float = 0.4, contrast: float = 0.4,
                 saturation: float = 0.4, hue: float = 0.1, gray_prob: float = 0.2,
                 views: Optional[Sequence[int]] = None) -> None:
        self.views = None if views is None else tuple(views)
        self.blur_prob = blur_prob
        self.blur_sigma = tuple(blur_sigma)
        self.jitter_prob = jitter_prob
        self.jitter = T.ColorJitter(brightness, contrast, saturation, hue)
        self.grayscale = T.RandomGrayscale(gray_prob)

    def _augment(self, view: np.ndarray) -> np.ndarray:
        if view.ndim == 4:
            return np.stack([self._augment(patch) for patch in view])
        img = Image.fromarray(view)
        if random.random() < self.blur_prob:
            img = img.filter(ImageFilter.GaussianBlur(radius=random.uniform(*self.blur_sigma)))
        if random.random() < self.jitter_prob:
            img = self.jitter(img)
        return np.asarray(self.grayscale(img))

    def transform(self, results: dict) -> dict:
        views = range(len(results['img'])) if self.views is None else self.views
        results['img'] = list(results['img'])
        for i in views:
            results['img'][i] = self._augment(results['img'][i])
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(blur_prob={self.blur_prob}, blur_sigma={self.blur_sigma}, '
                f'jitter_prob={self.jitter_prob}, jitter={self.jitter}, grayscale={self.grayscale}, '
                f'views={self.views})')
