"""The paired-view pipeline on real photos: shapes, recorded crops, shared
flip, and that mapped regions show the same image content in both views."""
import numpy as np
import pytest
import torch
from mmengine.dataset import Compose, pseudo_collate

import crosscl_mm  # noqa: F401
from crosscl_mm.datasets import UnlabeledImageFolder
from crosscl_mm.registry import MODELS, TRANSFORMS

from conftest import skimage_photo


def coordinate_image(side=256):
    """Red is the column and green the row of each pixel: any image content
    read back from a view says which source pixel it came from."""
    ys, xs = np.mgrid[0:side, 0:side]
    return np.stack([xs, ys, np.full_like(xs, 128)], -1).astype(np.uint8)


def sample_bilinear(view, x, y):
    """The view's (red, green) at the continuous point ``(x, y)`` in pixel
    units (pixel ``(i, j)`` covers ``[j, j + 1) x [i, i + 1)``), interpolated
    between pixel centres."""
    h, w = view.shape[:2]
    u, v = np.clip(x - 0.5, 0, w - 1), np.clip(y - 0.5, 0, h - 1)
    j0, i0 = min(int(u), w - 2), min(int(v), h - 2)
    a, b = u - j0, v - i0
    patch = view[i0:i0 + 2, j0:j0 + 2, :2].astype(np.float64)
    return ((1 - a) * (1 - b) * patch[0, 0] + a * (1 - b) * patch[0, 1]
            + (1 - a) * b * patch[1, 0] + a * b * patch[1, 1])


@pytest.mark.parametrize('flip_prob', [0.0, 1.0], ids=['no-flip', 'flip'])
@pytest.mark.parametrize('size', [64, 224])
def test_mapped_windows_show_the_same_pixels_in_both_views(size, flip_prob):
    """On a coordinate-coded image, flipped for real (or not) and cut into two
    views by the pipeline, each valid window and its box in the key view show
    the same source pixels: read at five points of the window (its centre
    and four points inset from its corners), both views give the same source
    coordinates, for CrossCL's lattice and ReSim's P3 lattice."""
    img = coordinate_image()
    pipeline = Compose([
        TRANSFORMS.build(dict(type='PairedRandomResizedCrop', size=size, flip_prob=flip_prob)),
        TRANSFORMS.build(dict(type='SlidingWindowRegions', windows=dict(
            p4=dict(window=48, stride=32, grid=6), p3=dict(window=32, stride=24, grid=8))))])
    torch.manual_seed(size)
    checked, worst = 0, 0.0
    for _ in range(25):
        out = pipeline(dict(img=img.copy()))
        q_view, k_view = out['img']
        assert out['flip'] == bool(flip_prob)
        for view in (q_view, k_view):  # the flip is real: red then falls left to right
            assert (view[size // 2, -1, 0] < view[size // 2, 0, 0]) == bool(flip_prob)
        for level in ('p4', 'p3'):
            regions = out[f'regions_{level}']
            for qb, kb, ok in zip(regions['query_boxes'], regions['key_boxes'], regions['valid']):
                if not ok:
                    continue
                for fx, fy in ((0.5, 0.5), (0.2, 0.2), (0.8, 0.2), (0.2, 0.8), (0.8, 0.8)):
                    seen_q = sample_bilinear(q_view, qb[0] + fx * (qb[2] - qb[0]),
                                             qb[1] + fy * (qb[3] - qb[1]))
                    seen_k = sample_bilinear(k_view, kb[0] + fx * (kb[2] - kb[0]),
                                             kb[1] + fy * (kb[3] - kb[1]))
                    worst = max(worst, np.abs(seen_q - seen_k).max())
                checked += 1
    # Each view rounds to whole source pixels and PIL's filter bends the ramp
    # at crop borders: about a source pixel at most.
    assert worst <= 1.5, worst
    assert checked > 300


def test_pack_and_preprocess_real_photo():
    pipeline = Compose([TRANSFORMS.build(dict(type='LoadImageRGB')),
                        TRANSFORMS.build(dict(type='PairedRandomResizedCrop', size=96)),
                        TRANSFORMS.build(dict(type='SlidingWindowRegions')),
                        TRANSFORMS.build(dict(type='ViewColorAugment')),
                        TRANSFORMS.build(dict(type='PackRegionPairInputs'))])
    item = pipeline(dict(img_path=skimage_photo('chelsea.png')))
    q, k = item['inputs']
    assert q.shape == k.shape == (3, 96, 96) and q.dtype == torch.uint8
    sample = item['data_samples']
    assert sample.regions_p4.query_boxes.shape == (36, 4)
    assert sample.regions_p3.valid.dtype == torch.bool
    assert sample.img_path.endswith('chelsea.png') and sample.view_size == 96
    batch = pseudo_collate([item, pipeline(dict(img_path=skimage_photo('astronaut.png')))])
    pre = MODELS.build(dict(type='RegionPairDataPreprocessor'))
    out = pre(batch, training=True)
    assert out['inputs'][0].shape == (2, 3, 96, 96) and out['inputs'][0].dtype == torch.float32
    # pseudo_collate gives [queries, keys]; the preprocessor stacks each view.
    expected = (batch['inputs'][1][0].float() - pre.mean) / pre.std
    torch.testing.assert_close(out['inputs'][1][0], expected)


@pytest.mark.parametrize('start_method', ['fork', 'spawn'])
def test_view_size_reaches_persistent_workers(photo_dir, start_method):
    """Multi-scale training changes the size between epochs without rebuilding
    the dataloader: running worker processes see it."""
    from torch.utils.data import DataLoader
    ds = UnlabeledImageFolder(data_root=photo_dir, pipeline=[
        dict(type='LoadImageRGB'), dict(type='PairedRandomResizedCrop', size=64),
        dict(type='SlidingWindowRegions'), dict(type='PackRegionPairInputs')])
    loader = DataLoader(ds, batch_size=2, num_workers=1, persistent_workers=True,
                        collate_fn=pseudo_collate, multiprocessing_context=start_method)
    crop = ds.pipeline.transforms[1]
    sizes = []
    for size in (64, 96, 128):
        crop.set_view_size(size)
        batch = next(iter(loader))
        sizes.append(tuple(batch['inputs'][0][0].shape))
        assert batch['data_samples'][0].view_size == size
    assert sizes == [(3, 64, 64), (3, 96, 96), (3, 128, 128)]


def test_folder_scan_counts_images_and_ignores_other_files(tmp_path, photo_dir):
    import shutil
    root = tmp_path / 'data'
    shutil.copytree(photo_dir, root / 'train')
    (root / 'train' / 'notes.txt').write_text('not an image')
    (root / 'train' / 'class_0' / 'deep').mkdir()
    shutil.copy(next((root / 'train' / 'class_0').glob('*.jpg')), root / 'train' / 'class_0' / 'deep' / 'x.JPEG')
    ds = UnlabeledImageFolder(data_root=str(root / 'train'), pipeline=[])
    assert len(ds) == 9
    paths = [ds.get_data_info(i)['img_path'] for i in range(len(ds))]
    assert len(set(paths)) == 9
    assert any(p.endswith('deep/x.JPEG') for p in paths)
    with pytest.raises(FileNotFoundError, match='data_root'):
        UnlabeledImageFolder(data_root=str(tmp_path / 'missing'), pipeline=[])
