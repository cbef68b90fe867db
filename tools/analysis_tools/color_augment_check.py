"""The device's photometric ops against PIL and torchvision, on any device.

    python tools/analysis_tools/color_augment_check.py [--device cuda|cpu] [--draws 320]

The checks tests/test_device_color_augment.py asserts on the CPU, run here on
the device of your choice (gpu_check.py's ``augment`` stage runs them on the
GPU), plus the throughput of the ops at training sizes:

- fixed parameters: each op (brightness, contrast, saturation, hue, PIL's
  GaussianBlur(radius), grayscale, solarize) on real photos against the PIL
  op: largest difference in levels of 255 and the fraction of equal values;
- random parameters: ``draws`` images through the device path and through
  MoCo v2's recipe written with torchvision's transforms (PIL), thirteen
  per-image statistics (channel means and standard deviations, gray-level
  quarters, mean absolute change per channel), two-sample Kolmogorov-Smirnov
  p-values; the same against the
  device path with hue 0.4 (must fail);
- jitter order: with fixed factors only the order is random; the spread of
  16 draws of one photo, per-image order (as torchvision) against the
  reference, and one order shared by a batch (must fail);
- throughput: images/s of CrossCL's colour augmentation (MoCo v2's ops) on
  batches of 224 px views.

Everything on the reference side is torchvision and PIL (nothing of
crosscl_mm).
"""
import argparse
import os.path as osp
import random
import sys
import time
from typing import Callable, Dict, List, Sequence

import numpy as np

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

PHOTOS = ('astronaut.png', 'chelsea.png', 'coffee.png', 'rocket.jpg')
MOCO_V2 = dict(blur_prob=0.5, blur_sigma=(0.1, 2.0), jitter_prob=0.8, brightness=0.4,
               contrast=0.4, saturation=0.4, hue=0.1, gray_prob=0.2)
FIXED_FACTORS = dict(brightness=(1.4, 1.4), contrast=(0.6, 0.6), saturation=(1.4, 1.4),
                     hue=(0.1, 0.1))
STATISTICS = ('mean R', 'mean G', 'mean B', 'std R', 'std G', 'std B',
              'gray 0-63', 'gray 64-127', 'gray 128-191', 'gray 192-255',
              'mean |change| R', 'mean |change| G', 'mean |change| B')


def photos(size: int) -> List[np.ndarray]:
    """scikit-image's photos, centre-cropped square, resized to ``size`` (uint8 HWC)."""
    import skimage
    from PIL import Image
    out = []
    for name in PHOTOS:
        with Image.open(osp.join(osp.dirname(skimage.__file__), 'data', name)) as img:
            img = img.convert('RGB')
            side = min(img.size)
            left, top = (img.width - side) // 2, (img.height - side) // 2
            out.append(np.asarray(img.crop((left, top, left + side, top + side))
                                  .resize((size, size), Image.BILINEAR)))
    return out


def on_device(imgs: Sequence[np.ndarray], fn: Callable, device: str = 'cpu') -> np.ndarray:
    """``fn`` on the images stacked as the data preprocessor holds them
    (float levels, ``(N, 3, H, W)``, on ``device``), back to HWC integers."""
    import torch
    x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float().to(device)
    return fn(x).permute(0, 2, 3, 1).cpu().numpy().astype(int)


# ---- fixed parameters ------------------------------------------------------------------

def fixed_cases():
    """(op, PIL op, device op, values): the PIL side from torchvision/PIL alone."""
    import torchvision.transforms.functional as TF
    from PIL import ImageFilter, ImageOps
    from crosscl_mm.models import color_augment as ca
    return [
        ('brightness', TF.adjust_brightness, ca.adjust_brightness, (0.6, 0.83, 1.17, 1.4)),
        ('contrast', TF.adjust_contrast, ca.adjust_contrast, (0.6, 0.83, 1.17, 1.4)),
        ('saturation', TF.adjust_saturation, ca.adjust_saturation, (0.0, 0.6, 1.17, 1.4)),
        ('hue', TF.adjust_hue, ca.adjust_hue, (-0.1, -0.013, 0.0, 0.07, 0.4)),
        # PIL's GaussianBlur(radius=sigma): three passes of an extended box per axis
        ('blur', lambda img, s: img.filter(ImageFilter.GaussianBlur(radius=s)),
         lambda x, s: ca.pil_gaussian_blur(x, s, max_sigma=2.0), (0.1, 0.5, 1.0, 1.37, 2.0)),
        ('grayscale', lambda img, _: TF.rgb_to_grayscale(img, 3),
         lambda x, f: ca.to_grayscale(x, f > 0), (1,)),
        ('solarize', lambda img, _: ImageOps.solarize(img, 128),
         lambda x, f: ca.solarize(x, f > 0), (1,)),
    ]


def fixed_parameter_parity(device: str = 'cpu', size: int = 96) -> List[dict]:
    """Per op and value: the largest difference from the PIL op (levels of
    255) and the fraction of equal values, over the photos at ``size`` px."""
    import torch
    from PIL import Image
    imgs = photos(size)
    rows = []
    for name, pil_op, device_op, values in fixed_cases():
        for value in values:
            factor = torch.full((len(imgs),), float(value), device=device)
            ours = on_device(imgs, lambda x: device_op(x, factor), device)
            ref = np.stack([np.asarray(pil_op(Image.fromarray(img), value)) for img in imgs])
            diff = np.abs(ours - ref.astype(int))
            rows.append(dict(op=name, value=value, max_diff=int(diff.max()),
                             equal=float((diff == 0).mean())))
    return rows


# ---- random parameters -----------------------------------------------------------------

def reference_recipe(blur_prob, blur_sigma, jitter_prob, brightness, contrast, saturation,
                     hue, gray_prob):
    """MoCo v2's augmentation in torchvision's terms (moco/main_moco.py --aug-plus; blur
    first, as CrossCL's main_crosscl.py:239-244), with PIL's GaussianBlur."""
    import torchvision.transforms as T
    from PIL import ImageFilter

    def blur(img):
        return img.filter(ImageFilter.GaussianBlur(radius=random.uniform(*blur_sigma)))
    return T.Compose([T.RandomApply([blur], p=blur_prob),
                      T.RandomApply([T.ColorJitter(brightness, contrast, saturation, hue)],
                                    p=jitter_prob),
                      T.RandomGrayscale(gray_prob)])


def image_statistics(views: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """Per image (rows): each channel's mean and standard deviation, the
    fraction of its gray levels in each quarter of 0..255 (a coarse
    histogram), and each channel's mean absolute change from its source."""
    views = np.asarray(views, dtype=np.float64)
    gray = views @ np.array([0.299, 0.587, 0.114])
    quarters = np.stack([((gray >= 64 * q) & (gray < 64 * (q + 1))).mean((1, 2))
                         for q in range(4)], 1)
    change = np.abs(views - np.asarray(sources, dtype=np.float64)).mean((1, 2))
    return np.concatenate([views.mean((1, 2)), views.std((1, 2)), quarters, change], 1)


def pil_draws(cfg: dict, draws: int, size: int = 64, seed: int = 1) -> np.ndarray:
    """``draws`` outputs of the reference recipe, the photos in turn."""
    import torch
    from PIL import Image
    imgs = photos(size)
    torch.manual_seed(seed)
    random.seed(seed)
    recipe = reference_recipe(**cfg)
    return np.stack([np.asarray(recipe(Image.fromarray(imgs[i % len(imgs)])))
                     for i in range(draws)])


def device_draws(cfg: dict, draws: int, device: str = 'cpu', size: int = 64, batch: int = 32,
                 seed: int = 2) -> np.ndarray:
    """``draws`` outputs of the device path built from ``cfg`` (a
    ViewColorAugment config), in batches, the photos in turn."""
    import torch
    from crosscl_mm.models.color_augment import DeviceColorAugment
    imgs = photos(size)
    torch.manual_seed(seed)
    augment = DeviceColorAugment.from_config(dict(type='ViewColorAugment', **cfg))
    out = []
    for start in range(0, draws, batch):
        chunk = [imgs[i % len(imgs)] for i in range(start, min(start + batch, draws))]
        out.append(on_device(chunk, augment, device))
    return np.concatenate(out)


def ks_pvalues(a: np.ndarray, b: np.ndarray) -> List[float]:
    from scipy.stats import ks_2samp
    return [float(ks_2samp(a[:, j], b[:, j]).pvalue) for j in range(a.shape[1])]


def recipe_pvalues(device: str = 'cpu', draws: int = 200) -> Dict[str, List[float]]:
    """KS p-values of the statistics, device path against the reference:
    ``same`` (MoCo v2's recipe) and ``hue 0.4`` (the device with hue 0.4)."""
    imgs = photos(64)
    sources = [imgs[i % len(imgs)] for i in range(draws)]
    ref = image_statistics(pil_draws(MOCO_V2, draws), sources)
    return {label: ks_pvalues(image_statistics(device_draws(cfg, draws, device), sources), ref)
            for label, cfg in (('same', MOCO_V2), ('hue 0.4', dict(MOCO_V2, hue=0.4)))}


def order_pvalues(device: str = 'cpu', groups: int = 24, size: int = 16) -> Dict[str, float]:
    """Fixed factors, random order: per group of ``size`` draws of one photo
    the std of their mean levels; KS p-values of the device path (per-image
    order) and of one order shared by the batch, against torchvision."""
    import torch
    import torchvision.transforms as T
    from PIL import Image
    from scipy.stats import ks_2samp
    from crosscl_mm.models import color_augment as ca
    img = photos(48)[1]
    jitter = T.ColorJitter(**FIXED_FACTORS)
    torch.manual_seed(3)
    ref = [np.std([np.asarray(jitter(Image.fromarray(img)), float).mean() for _ in range(size)])
           for _ in range(groups)]
    augment = ca.DeviceColorAugment(blur_prob=0, jitter_prob=1, gray_prob=0, ops=('jitter',),
                                    **FIXED_FACTORS)
    torch.manual_seed(4)
    per_image = [on_device([img] * size, augment, device).mean((1, 2, 3)).std()
                 for _ in range(groups)]
    factors = torch.tensor([[1.4, 0.6, 1.4, 0.1]], device=device).repeat(size, 1)
    apply = torch.ones(size, 4, dtype=torch.bool, device=device)
    shared = [on_device([img] * size, lambda x: ca.color_jitter(
        x, factors, torch.randperm(4, device=device).expand(size, 4), apply),
        device).mean((1, 2, 3)).std() for _ in range(groups)]
    return {'per image': float(ks_2samp(per_image, ref).pvalue),
            'shared per batch': float(ks_2samp(shared, ref).pvalue)}


def throughput(device: str = 'cpu', batch_sizes: Sequence[int] = (64, 128, 256),
               size: int = 224, reps: int = 5) -> List[dict]:
    """Images/s of MoCo v2's ops (DeviceColorAugment) on random-content uint8
    ``size`` px batches: the median of ``reps`` timed calls after a warm-up."""
    import statistics
    import torch
    from crosscl_mm.models.color_augment import DeviceColorAugment
    torch.manual_seed(0)
    augment = DeviceColorAugment(**MOCO_V2)
    imgs = photos(size)
    rows = []
    for n in batch_sizes:
        x = torch.from_numpy(np.stack([imgs[i % len(imgs)] for i in range(n)])) \
            .permute(0, 3, 1, 2).contiguous().to(device)
        augment(x)
        times = []
        for _ in range(reps):
            if device == 'cuda':
                torch.cuda.synchronize()
            start = time.perf_counter()
            augment(x)
            if device == 'cuda':
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        seconds = statistics.median(times)
        rows.append(dict(batch=n, ms=seconds * 1000, images_per_s=n / seconds))
    return rows


def report(device: str = 'cpu', draws: int = 200, batch_sizes=(64, 128, 256), size: int = 224,
           log=print) -> bool:
    """All checks on ``device``, printed; True if every one holds."""
    ok = True
    log(f'fixed parameters on {device} (photos at 96 px; bound: max diff <= 1 level, '
        '>= 99.9% equal):')
    log('| op | value | max diff | equal |')
    log('| --- | --- | --- | --- |')
    for row in fixed_parameter_parity(device):
        holds = row['max_diff'] <= 1 and row['equal'] >= 0.999
        ok &= holds
        log(f'| {row["op"]} | {row["value"]} | {row["max_diff"]} | {row["equal"]:.5f} |'
            + ('' if holds else ' NOT within the bound'))
    pvalues = recipe_pvalues(device, draws)
    log(f'\nrandom parameters: {draws} draws each side, KS p-values per statistic')
    log('| statistic | ' + ' | '.join(pvalues) + ' |')
    log('| --- ' * (len(pvalues) + 1) + '|')
    for j, name in enumerate(STATISTICS):
        log(f'| {name} | ' + ' | '.join(f'{p[j]:.2e}' for p in pvalues.values()) + ' |')
    same, wrong = min(pvalues['same']), min(pvalues['hue 0.4'])
    bound = 0.01 / len(STATISTICS)  # Bonferroni
    ok &= same > bound and wrong < 1e-4
    log(f'same recipe: smallest p {same:.3g} (must be > {bound:.2g} = 0.01 / {len(STATISTICS)}): '
        f'{"ok" if same > bound else "FAILED"}; hue 0.4: smallest p {wrong:.3g} '
        f'(must be < 1e-4): {"detected" if wrong < 1e-4 else "NOT detected"}')
    order = order_pvalues(device)
    ok &= order['per image'] > 0.01 and order['shared per batch'] < 1e-4
    log(f'jitter order: per image p {order["per image"]:.3g} (must be > 0.01), shared per '
        f'batch p {order["shared per batch"]:.3g} (must be < 1e-4)')
    if batch_sizes:
        log(f'\nthroughput of MoCo v2\'s ops (blur 0.5, jitter 0.8, gray 0.2) at {size} px '
            f'on {device}:')
        log('| batch | ms / batch | images/s |')
        log('| --- | --- | --- |')
        for row in throughput(device, batch_sizes, size):
            log(f'| {row["batch"]} | {row["ms"]:.2f} | {row["images_per_s"]:.0f} |')
    log(f'\ncolour augmentation checks on {device}: {"all hold" if ok else "SOME FAILED"}')
    return ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--draws', type=int, default=200)
    parser.add_argument('--batch-sizes', type=int, nargs='*', default=[64, 128, 256])
    parser.add_argument('--size', type=int, default=224)
    args = parser.parse_args(argv)
    return 0 if report(args.device, args.draws, args.batch_sizes, args.size) else 1


if __name__ == '__main__':
    sys.exit(main())
