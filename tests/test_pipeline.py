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


def geometric_pipeline(size):
    return Compose([TRANSFORMS.build(dict(type='PairedRandomResizedCrop', size=size)),
                    TRANSFORMS.build(dict(type='SlidingWindowRegions'))])


def test_mapped_regions_show_the_same_content():
    """On an image whose pixels encode their own coordinates, the centre of a
    query window and the centre of its mapped key window must read the same
    coordinates, flips included. This checks the transform end to end."""
    h, w = 300, 400
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([xs / (w - 1) * 255, ys / (h - 1) * 255, np.zeros_like(xs)], -1).round()
    img = img.astype(np.uint8)
    torch.manual_seed(0)
    pipeline = geometric_pipeline(224)
    checked, flips = 0, set()
    for _ in range(40):
        out = pipeline(dict(img=img.copy()))
        q_view, k_view = out['img']
        regions = out['regions_p4']
        flips.add(out['flip'])
        for qb, kb, ok in zip(regions['query_boxes'], regions['key_boxes'], regions['valid']):
            if not ok:
                continue
            qc = q_view[int((qb[1] + qb[3]) / 2), int((qb[0] + qb[2]) / 2), :2].astype(int)
            kc = k_view[int((kb[1] + kb[3]) / 2), int((kb[0] + kb[2]) / 2), :2].astype(int)
            # One pixel of rounding in each view, at the crops' scales.
            assert np.abs(qc - kc).max() <= 6, (qc, kc)
            checked += 1
        # The crop box read back from the view's corner pixels.
        x0, y0, x1, y1 = out['crop_boxes'][0]
        if out['flip']:
            x0, x1 = w - x1, w - x0
            assert q_view[112, 0, 0] >= q_view[112, -1, 0]  # flipped ramp decreases
        corner = q_view[0, 0, 1] / 255 * (h - 1)
        assert abs(corner - y0) <= 2 + (y1 - y0) / 224
    assert checked > 200 and flips == {True, False}


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
