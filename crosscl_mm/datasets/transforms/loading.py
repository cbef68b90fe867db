from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.logging import print_log
from PIL import Image, ImageOps

from crosscl_mm.registry import TRANSFORMS


def decode_rgb(path: str) -> np.ndarray:
    """Decode an image file to an ``(H, W, 3)`` uint8 RGB array.

    EXIF orientation is applied; grayscale, palette, CMYK and alpha images are
    converted as ``PIL.Image.convert('RGB')`` does (the reference's loader);
    16-bit images are scaled to 8 bits instead of being clipped.
    """
    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img)
        if img.mode in ('I;16', 'I;16B', 'I;16L', 'I'):
            arr = np.asarray(img).astype(np.float64)
            top = 65535.0 if arr.max(initial=0) > 255 else 255.0
            gray = np.clip(np.round(arr * (255.0 / top)), 0, 255).astype(np.uint8)
            return np.repeat(gray[..., None], 3, axis=2)
        return np.asarray(img.convert('RGB'))


@TRANSFORMS.register_module()
class LoadImageRGB(BaseTransform):
    """Load ``results['img_path']`` as RGB uint8 into ``results['img']``.

    A file that cannot be decoded (unreadable, truncated, empty, not an
    image) is skipped: the transform returns ``None``, which makes
    :class:`mmengine.dataset.BaseDataset` draw another sample, and a warning
    names the file with a running count. More than ``max_failures`` failures
    in one process stop the run with an error.

    Args:
        max_failures: how many undecodable files one worker may skip;
            ``None`` for no limit.
    """

    def __init__(self, max_failures: Optional[int] = 1000) -> None:
        self.max_failures = max_failures
        self.failures = 0

    def transform(self, results: dict) -> Optional[dict]:
        path = results['img_path']
        try:
            img = decode_rgb(path)
        except Exception as exc:  # PIL raises many types for broken files
            self.failures += 1
            print_log(f'LoadImageRGB: skipped unreadable image {path} ({type(exc).__name__}: '
                      f'{exc}); {self.failures} skipped so far in this worker',
                      logger='current', level=30)
            if self.max_failures is not None and self.failures > self.max_failures:
                raise RuntimeError(
                    f'LoadImageRGB: {self.failures} images failed to decode, more than '
                    f'max_failures={self.max_failures}; last was {path}') from exc
            return None
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(max_failures={self.max_failures})'
