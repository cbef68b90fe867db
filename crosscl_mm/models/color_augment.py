"""Photometric augmentation on the device, batched, with PIL's arithmetic.

:class:`DeviceColorAugment` is built from the same config dict as the PIL
transform :class:`~crosscl_mm.datasets.transforms.views.ViewColorAugment`
(``blur_prob``, ``blur_sigma``, ``jitter_prob``, ``brightness``, ...,
``ops``, ``views``) and draws the same law per view: each op with its
probability, in ``ops`` order; colour jitter as torchvision's
``ColorJitter`` (factors uniform in ``[max(0, 1 - b), 1 + b]``, hue in
``[-h, h]``, the four adjustments in a random order, drawn per image: a
per-batch order is another distribution); grayscale as ``RandomGrayscale``;
``ImageFilter.GaussianBlur(radius=sigma)`` with sigma uniform in
``blur_sigma``; ``ImageOps.solarize(img, 128)``. The data preprocessor
(:class:`~crosscl_mm.models.data_preprocessor.RegionPairDataPreprocessor`,
``color_augments``) runs it on the uint8 views the CPU workers crop and
flip; boxes and regions are computed there and are untouched here.

Images are float tensors holding integer levels 0..255, and every op
rounds as Pillow 13 does (``src/libImaging``), so an op matches the PIL op
to the level up to float rounding at a boundary:

- brightness, contrast, saturation: ``ImageEnhance`` = ``Image.blend
  (degenerate, img, f)``, ``Blend.c``: ``trunc(d + f * (x - d))`` clipped to
  0..255; degenerate 0 (brightness), the gray mean ``int(mean(L) + 0.5)``
  (contrast), ``L`` (saturation); ``L = (19595 R + 38470 G + 7471 B +
  2^15) >> 16`` (``Convert.c`` ``L24``);
- hue: torchvision's PIL path (``_functional_pil.adjust_hue``): HSV in uint8
  (``Convert.c`` ``rgb2hsv_row``/``hsv2rgb``), ``H += int32(h * 255)`` mod 256;
- blur: ``BoxBlur.c``: three passes of an extended box of radius
  ``_gaussian_blur_radius(sigma, 3)`` horizontally, then three vertically,
  edges replicated, each pass rounded to uint8;
- grayscale: ``L`` in all three channels; solarize: ``x >= 128 -> 255 - x``.

On a GPU nothing is read back to the host: an op runs on the whole batch
and is kept for the images whose draw fired (the jitter: at each of its four
steps, each adjustment, kept where the image's order puts it there); on the
CPU it runs on those images only (:func:`where_kept`).

Not kornia: its ``ColorJitter`` applies one drawn ``order`` to the whole
batch (``kornia/augmentation/_2d/intensity/color_jitter.py``,
``apply_transform``) and computes in float without PIL's rounding.

A view may be a stack of patches ``(N, P, 3, h, w)`` (DetCo's jigsaw
patches, cut from a view the PIL pipeline colours before the cut): the
patches of a sample share one draw, the contrast mean is over the patches,
and the blur sees each patch's own edges (replicated) where PIL's saw the
neighbouring pixels of the uncut view.
"""
import inspect
import math
from functools import partial
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F

from crosscl_mm.datasets.transforms.views import PHOTOMETRIC_OPS, ViewColorAugment

CONFIG_KEYS = tuple(inspect.signature(ViewColorAugment.__init__).parameters)[1:]
BRIGHTNESS, CONTRAST, SATURATION, HUE = range(4)  # torchvision ColorJitter's fn_idx


def _per_image(factor: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``(N,)`` factors shaped to broadcast over ``x`` ``(N, 3, ...)``."""
    return factor.to(x.dtype).view(-1, *([1] * (x.dim() - 1)))


def where_kept(x: torch.Tensor, keep: torch.Tensor, fn, *per_image) -> torch.Tensor:
    """``fn(x, *per_image)`` for the images where ``keep``, ``x`` elsewhere.
    On a GPU ``fn`` runs on the whole batch and ``torch.where`` keeps its
    result (nothing is read back to the host); on the CPU, where reading the
    mask is free, it runs only on the kept images. Both give the same values:
    every op acts on each image alone."""
    if x.device.type == 'cpu':
        index = keep.nonzero().flatten()
        if len(index) == 0:
            return x
        out = x.clone()
        out[index] = fn(x[index], *(arg[index] for arg in per_image))
        return out
    return torch.where(_per_image(keep, x).bool(), fn(x, *per_image), x)


def pil_gray(x: torch.Tensor) -> torch.Tensor:
    """PIL's ``convert('L')`` of RGB levels, ``(N, 1, ...)``:
    ``(19595 R + 38470 G + 7471 B + 2^15) >> 16`` (``Convert.c`` ``L24``)."""
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    # integers below 2^24: exact in float32
    return torch.floor((r * 19595 + g * 38470 + b * 7471 + 32768) / 65536)


def pil_blend(degenerate: torch.Tensor, x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``Image.blend(degenerate, x, factor)`` (``Blend.c``): truncated, clipped."""
    f = _per_image(factor, x)
    return torch.clamp(degenerate + f * (x - degenerate), 0, 255).floor()


def adjust_brightness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return pil_blend(torch.zeros_like(x), x, factor)


def adjust_contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    gray = pil_gray(x)
    mean = torch.floor(gray.flatten(1).mean(1) + 0.5)  # int(ImageStat mean + 0.5)
    return pil_blend(_per_image(mean, x).expand_as(x), x, factor)


def adjust_saturation(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return pil_blend(pil_gray(x).expand_as(x), x, factor)


def rgb_to_pil_hsv(x: torch.Tensor):
    """PIL's RGB -> HSV in uint8 levels (``Convert.c`` ``rgb2hsv_row``), with
    its float (``f32``) and double (``f64``) intermediates, so the truncations agree."""
    f32, f64 = torch.float32, torch.float64
    r, g, b = x[:, 0].to(f32), x[:, 1].to(f32), x[:, 2].to(f32)
    maxc = torch.maximum(r, torch.maximum(g, b))
    minc = torch.minimum(r, torch.minimum(g, b))
    gray = maxc == minc
    cr = torch.where(gray, torch.ones_like(maxc), maxc - minc)
    s = cr / torch.where(maxc == 0, torch.ones_like(maxc), maxc)
    rc, gc, bc = ((maxc - r) / cr).to(f64), ((maxc - g) / cr).to(f64), ((maxc - b) / cr).to(f64)
    h = torch.where(r == maxc, (bc - gc).to(f32).to(f64),
                    torch.where(g == maxc, 2.0 + rc - bc, 4.0 + gc - rc).to(f32).to(f64))
    h = torch.fmod(h / 6.0 + 1.0, 1.0).to(f32).to(f64)
    uh = torch.where(gray, torch.zeros_like(h), torch.clamp(torch.trunc(h * 255.0), 0, 255))
    us = torch.where(gray, torch.zeros_like(h),
                     torch.clamp(torch.trunc(s.to(f64) * 255.0), 0, 255))
    return uh, us, maxc.to(f64)


def pil_hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """PIL's HSV -> RGB in uint8 levels (``Convert.c`` ``hsv2rgb``), ``(N, 3, ...)``,
    float64 in and out, with its float intermediates."""
    f32, f64 = torch.float32, torch.float64
    sector = torch.floor(h * 6.0 / 255.0)
    f = (h * 6.0 / 255.0 - sector).to(f32)
    fs = (s / 255.0).to(f32)
    # C's round(): half away from zero; all values here are >= 0
    p = torch.floor(v * (1.0 - fs.to(f64)) + 0.5).clamp(0, 255)
    q = torch.floor(v * (1.0 - (fs * f).to(f64)) + 0.5).clamp(0, 255)
    t = torch.floor(v * (1.0 - fs.to(f64) * (1.0 - f.to(f64))) + 0.5).clamp(0, 255)
    sector = torch.remainder(sector, 6)
    channels = []
    for table in ((v, q, p, p, t, v), (t, v, v, q, p, p), (p, p, t, v, v, q)):
        out = table[5]
        for i in range(4, -1, -1):
            out = torch.where(sector == i, table[i], out)
        channels.append(torch.where(s == 0, v, out))
    return torch.stack(channels, 1)


def adjust_hue(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """torchvision's PIL ``adjust_hue``: ``H += int32(factor * 255)`` mod 256 in PIL's HSV."""
    h, s, v = rgb_to_pil_hsv(x)
    shift = _per_image(torch.trunc(factor.to(torch.float64) * 255), h)
    return pil_hsv_to_rgb(torch.remainder(h + shift, 256), s, v).to(x.dtype)


def to_grayscale(x: torch.Tensor, apply: torch.Tensor) -> torch.Tensor:
    return torch.where(_per_image(apply, x).bool(), pil_gray(x).expand_as(x), x)


def solarize(x: torch.Tensor, apply: torch.Tensor, threshold: float = 128) -> torch.Tensor:
    """``ImageOps.solarize(img, threshold)``: levels at or above it inverted."""
    return torch.where(_per_image(apply, x).bool() & (x >= threshold), 255 - x, x)


def pil_box_radius(sigma: torch.Tensor, passes: int = 3) -> torch.Tensor:
    """``_gaussian_blur_radius`` (``BoxBlur.c``): the extended box radius whose
    ``passes`` passes have variance ``sigma ** 2`` (Gwosdek et al. 2011)."""
    sigma2 = sigma.to(torch.float32) ** 2 / passes
    box_len = torch.sqrt(12.0 * sigma2 + 1.0)
    whole = torch.floor((box_len - 1.0) / 2.0)
    frac = (2 * whole + 1) * (whole * (whole + 1) - 3 * sigma2)
    frac = frac / (6 * (sigma2 - (whole + 1) * (whole + 1)))
    return whole + frac


def pil_box_weights(radius: torch.Tensor):
    """One pass's integer weights (``ImagingHorizontalBoxBlur``), per image:
    ``ww`` on the ``2 r + 1`` inner taps and ``fw`` on the two fractional ends,
    in units of 2^-24. Radius 0 is the identity (PIL skips the pass)."""
    whole = torch.trunc(radius)
    ww = torch.floor(float(1 << 24) / (radius * 2 + 1))
    fw = torch.floor(((1 << 24) - (whole * 2 + 1) * ww) / 2)
    skip = radius <= 0
    return (whole, torch.where(skip, torch.full_like(ww, 1 << 24), ww),
            torch.where(skip, torch.zeros_like(fw), fw))


def _box_pass(x: torch.Tensor, whole: torch.Tensor, ww: torch.Tensor, fw: torch.Tensor,
              max_whole: int) -> torch.Tensor:
    """One box pass along the last axis of ``x`` ``(N, M, H, W)``, each image
    its own radius, edges replicated, rounded as ``(bulk + 2^23) >> 24``. The
    sums of the inner and of the two end taps are exact in float32 (integers
    below 2^24); ``bulk`` is formed in float64, where it is exact too."""
    n, m, h, w = x.shape
    k = 2 * max_whole + 3
    offsets = torch.arange(-max_whole - 1, max_whole + 2, device=x.device).abs().to(x.dtype)
    inner = (offsets[None] <= whole[:, None]).to(x.dtype)           # (N, K)
    ends = (offsets[None] == whole[:, None] + 1).to(x.dtype)
    weight = torch.stack([inner, ends], 1).repeat_interleave(m, 0).view(n * m * 2, 1, 1, k)
    padded = F.pad(x.reshape(1, n * m, h, w), (max_whole + 1, max_whole + 1, 0, 0),
                   mode='replicate')
    sums = F.conv2d(padded, weight, groups=n * m).view(n, m, 2, h, w).double()
    bulk = sums[:, :, 0] * ww.double().view(n, 1, 1, 1) + sums[:, :, 1] * fw.double().view(
        n, 1, 1, 1)
    return torch.floor((bulk + float(1 << 23)) / float(1 << 24)).to(x.dtype)


def pil_gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, max_sigma: float) -> torch.Tensor:
    """``img.filter(ImageFilter.GaussianBlur(radius=sigma))`` per image;
    ``sigma`` 0 leaves an image as it is. ``x`` is ``(N, C, ..., H, W)``;
    ``max_sigma`` bounds ``sigma`` and fixes the kernel length, so nothing
    is read back from the device."""
    max_whole = int(pil_box_radius(torch.tensor([float(max_sigma)]))[0])
    weights = pil_box_weights(pil_box_radius(sigma))
    shape = x.shape
    out = x.reshape(shape[0], -1, shape[-2], shape[-1])
    for _ in range(3):
        out = _box_pass(out, *weights, max_whole)
    out = out.transpose(-1, -2)
    for _ in range(3):
        out = _box_pass(out, *weights, max_whole)
    return out.transpose(-1, -2).reshape(shape)


JITTER_OPS = {BRIGHTNESS: adjust_brightness, CONTRAST: adjust_contrast,
              SATURATION: adjust_saturation, HUE: adjust_hue}


def color_jitter(x: torch.Tensor, factors: torch.Tensor, order: torch.Tensor,
                 apply: torch.Tensor) -> torch.Tensor:
    """torchvision's ``ColorJitter`` with per-image draws: ``factors`` ``(N, 4)``
    (brightness, contrast, saturation, hue), ``order`` ``(N, 4)`` a permutation
    of ``0..3`` per image (``fn_idx``), ``apply`` ``(N, 4)`` which adjustments
    an image gets (the jitter fired and the adjustment's range is not empty).
    At step ``k`` each adjustment runs on the whole batch and is kept where
    ``order[:, k]`` names it: no host synchronisation."""
    for k in range(4):
        for op, fn in JITTER_OPS.items():
            x = where_kept(x, (order[:, k] == op) & apply[:, op], fn, factors[:, op])
    return x


def jitter_range(value, name: str, center: float = 1.0, bound=(0.0, math.inf),
                 clip_first_on_zero: bool = True) -> Optional[Tuple[float, float]]:
    """torchvision ``ColorJitter._check_input``: a number ``v`` is
    ``[center - v, center + v]`` (the low end at least 0 for brightness,
    contrast, saturation); a pair is the range; ``None`` where it is just
    ``center`` (that adjustment never runs)."""
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f'DeviceColorAugment: {name} must be non-negative, got {value}')
        low, high = center - float(value), center + float(value)
        if clip_first_on_zero:
            low = max(low, 0.0)
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        low, high = float(value[0]), float(value[1])
    else:
        raise TypeError(f'DeviceColorAugment: {name} must be a number or a pair, got {value!r}')
    if not bound[0] <= low <= high <= bound[1]:
        raise ValueError(f'DeviceColorAugment: {name} range {(low, high)} is outside {bound}')
    return None if low == high == center else (low, high)


class DeviceColorAugment:
    """:class:`ViewColorAugment`'s draws and ops, batched on the device.

    Args: those of ``ViewColorAugment``, with its defaults (the same config
    dict; :meth:`from_config` accepts its ``type``).
    """

    def __init__(self, **cfg) -> None:
        # ViewColorAugment's signature is the one home of the arguments and their defaults
        args = inspect.signature(ViewColorAugment.__init__).bind(None, **cfg)
        args.apply_defaults()
        self._init(**{k: v for k, v in args.arguments.items() if k != 'self'})

    def _init(self, blur_prob, blur_sigma, jitter_prob, brightness, contrast, saturation, hue,
              gray_prob, solarize_prob, ops, views) -> None:
        unknown = [op for op in ops if op not in PHOTOMETRIC_OPS]
        if unknown:
            raise ValueError(f'DeviceColorAugment: unknown ops {unknown}; '
                             f'choose from {PHOTOMETRIC_OPS}')
        self.blur_prob, self.blur_sigma = blur_prob, tuple(float(s) for s in blur_sigma)
        self.jitter_prob, self.gray_prob, self.solarize_prob = jitter_prob, gray_prob, solarize_prob
        self.ranges = [jitter_range(v, name) for v, name in ((brightness, 'brightness'),
                                                             (contrast, 'contrast'),
                                                             (saturation, 'saturation'))]
        self.ranges.append(jitter_range(hue, 'hue', 0.0, (-0.5, 0.5), False))
        self.ops = tuple(ops)
        self.views = None if views is None else tuple(views)
        self._generators: Dict[torch.device, torch.Generator] = {}

    @classmethod
    def from_config(cls, cfg: dict) -> 'DeviceColorAugment':
        cfg = dict(cfg)
        kind = cfg.pop('type', 'ViewColorAugment')
        if kind != 'ViewColorAugment':
            raise ValueError(f'color_augments: an entry has type={kind!r}; the device runs '
                             "only ViewColorAugment's config")
        unknown = sorted(set(cfg) - set(CONFIG_KEYS))
        if unknown:
            raise ValueError(f'color_augments: unknown keys {unknown} in {cfg}')
        return cls(**cfg)

    def generator(self, device: torch.device) -> torch.Generator:
        """This process's generator on ``device``: seeded from torch's seed (the
        run's ``randomness.seed``) and the rank, so ranks draw differently."""
        device = torch.device(device)
        if device not in self._generators:
            from mmengine.dist import get_rank
            seed = (torch.initial_seed() + 1_000_003 * (get_rank() + 1)) % (2 ** 63)
            self._generators[device] = torch.Generator(device).manual_seed(seed)
        return self._generators[device]

    def _uniform(self, n: int, low: float, high: float, g: torch.Generator, device) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=g, device=device)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Augment views ``x``: ``(N, 3, H, W)`` or patch stacks ``(N, P, 3, h, w)``,
        float levels 0..255 (uint8 is converted); returns float levels.

        Autocast is switched off inside: ``train_step`` runs the data preprocessor
        under the optimizer wrapper's autocast, which would run the blur's
        convolutions in half precision and lose the exact integer sums."""
        with torch.autocast(x.device.type, enabled=False):
            return self._augment(x)

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        stacked = x.dim() == 5
        if stacked:
            x = x.transpose(1, 2)  # (N, 3, P, h, w): a sample's patches share its draws
        n, device = x.shape[0], x.device
        g = self.generator(device)
        for op in self.ops:
            fires = torch.rand(n, generator=g, device=device)
            if op == 'blur':
                sigma = self._uniform(n, *self.blur_sigma, g, device)
                x = where_kept(x, fires < self.blur_prob, partial(
                    pil_gaussian_blur, max_sigma=max(self.blur_sigma)), sigma)
            elif op == 'jitter':
                factors = torch.stack([self._uniform(n, *(r or (0.0, 0.0)), g, device)
                                       for r in self.ranges], 1)
                order = torch.rand(n, 4, generator=g, device=device).argsort(1)
                used = torch.tensor([r is not None for r in self.ranges], device=device)
                x = color_jitter(x, factors, order, (fires < self.jitter_prob)[:, None] & used)
            elif op == 'gray':
                x = to_grayscale(x, fires < self.gray_prob)
            else:
                x = solarize(x, fires < self.solarize_prob)
        return x.transpose(1, 2) if stacked else x

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(ops={self.ops}, views={self.views}, '
                f'blur_prob={self.blur_prob}, blur_sigma={self.blur_sigma}, '
                f'jitter_prob={self.jitter_prob}, ranges={self.ranges}, '
                f'gray_prob={self.gray_prob}, solarize_prob={self.solarize_prob})')
