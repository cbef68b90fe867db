"""The photometric ops on the device (crosscl_mm/models/color_augment.py)
against PIL and torchvision, the reference the PIL pipeline runs.

The comparisons live in tools/analysis_tools/color_augment_check.py (the
GPU check runs them on CUDA); their reference side is torchvision and PIL
alone. Here, on the CPU:

- fixed parameters: each op on real photos against the PIL op;
- random parameters: many draws of the device path against the same recipe
  written with torchvision's transforms (per-image statistics, two-sample
  Kolmogorov-Smirnov tests), and the two mutations those tests must catch
  (hue 0.4 where the recipe has 0.1; one jitter order per batch);
- the ``_gpu-aug`` configs: the same crops, flips, boxes and patches as the
  PIL configs' pipelines, and a short two-process CPU run of each.
"""
import glob
import math
import os.path as osp
import sys

import numpy as np
import pytest
import torch

from crosscl_mm.models.color_augment import DeviceColorAugment

from conftest import REPO, free_port, python_cmd, run, skimage_photo

sys.path.insert(0, osp.join(REPO, 'tools', 'analysis_tools'))
import color_augment_check as check  # noqa: E402  tools/analysis_tools/color_augment_check.py


@pytest.fixture(autouse=True, scope='module')
def _photos_present():
    for name in check.PHOTOS:
        skimage_photo(name)  # skips where scikit-image lacks one


# ---- fixed parameters ------------------------------------------------------------------

def test_each_op_matches_pil_on_photos():
    """Bound, per op and value: at most 1 level of 255 anywhere and at least
    99.9% of the values equal (the device ops repeat Pillow's integer
    arithmetic; float rounding at a boundary may differ on other hardware).
    Blur: PIL's GaussianBlur(radius=sigma) is three passes of an extended box
    per axis; the kernel spans 2 * floor(r) + 3 taps per pass for PIL's box
    radius r of the largest sigma, 2.0 (r = 1.375: 5 taps, 13 after three
    passes). On this CPU every value is equal."""
    rows = check.fixed_parameter_parity('cpu', size=96)
    assert {r['op'] for r in rows} == {'brightness', 'contrast', 'saturation', 'hue', 'blur',
                                       'grayscale', 'solarize'}
    for row in rows:
        assert row['max_diff'] <= 1 and row['equal'] >= 0.999, row


def test_a_batch_of_images_each_gets_its_own_factor():
    from PIL import Image, ImageFilter
    import torchvision.transforms.functional as TF
    from crosscl_mm.models import color_augment as ca
    imgs = check.photos(64)
    sigma = torch.tensor([0.0, 0.3, 1.1, 2.0])
    blurred = check.on_device(imgs, lambda x: ca.pil_gaussian_blur(x, sigma, 2.0))
    hue = torch.tensor([-0.1, 0.0, 0.05, 0.1])
    hued = check.on_device(imgs, lambda x: ca.adjust_hue(x, hue))
    for i, img in enumerate(imgs):
        pil = Image.fromarray(img)
        ref = img if sigma[i] == 0 else np.asarray(pil.filter(ImageFilter.GaussianBlur(
            radius=float(sigma[i]))))
        assert np.abs(blurred[i] - ref.astype(int)).max() <= 1
        assert np.abs(hued[i] - np.asarray(TF.adjust_hue(pil, float(hue[i]))).astype(int)
                      ).max() <= 1


# ---- random parameters -----------------------------------------------------------------

def test_many_draws_match_the_pil_recipe_and_hue_0_4_does_not():
    """Thirteen per-image statistics (channel means and stds, gray-level
    quarters, mean absolute change per channel), each a two-sample KS test of
    200 device draws against 200 draws of the torchvision/PIL recipe (the same
    photos in the same order). Same recipe: every p-value above 0.01 / 13
    (Bonferroni); the device path with hue 0.4 in place of 0.1 must fail some
    test at p < 1e-4."""
    pvalues = check.recipe_pvalues('cpu', draws=200)
    assert min(pvalues['same']) > 0.01 / len(check.STATISTICS), np.round(pvalues['same'], 4)
    assert min(pvalues['hue 0.4']) < 1e-4, pvalues['hue 0.4']


def test_jitter_order_is_drawn_per_image_not_per_batch():
    """With the factors fixed only the order is random. Per group of 16 draws
    of one photo: the spread (std) of the draws' mean levels. torchvision
    draws each image's order (24 groups of 16 independent ColorJitter calls);
    the device path must agree (KS p > 0.01), and one order shared by a whole
    batch (all 16 alike) must not (p < 1e-4)."""
    pvalues = check.order_pvalues('cpu')
    assert pvalues['per image'] > 0.01 and pvalues['shared per batch'] < 1e-4, pvalues


def test_patch_stacks_share_their_views_draw():
    """DetCo's local views reach the device as stacks of patches; the patches
    of one sample get one draw (the PIL pipeline colours the view before the
    cut): with the jitter alone, patches cut from one flat colour stay equal."""
    flat = torch.full((6, 9, 3, 8, 8), 100.0)
    flat[:, :, 0] = 180.0
    torch.manual_seed(5)
    out = DeviceColorAugment(ops=('jitter', 'gray'), jitter_prob=1.0, gray_prob=0.5)(flat)
    assert out.shape == flat.shape
    assert (out == out[:, :1]).all()  # every patch like the sample's first
    assert len({tuple(o[0, :, 0, 0].tolist()) for o in out}) == 6  # samples differ


def test_preprocessor_colours_its_views_in_training_only():
    """RegionPairDataPreprocessor runs each colour config on its views, before
    the normalisation, and only in training."""
    from crosscl_mm.models import RegionPairDataPreprocessor
    mean, std = (10.0, 20.0, 30.0), (2.0, 4.0, 8.0)
    pre = RegionPairDataPreprocessor(mean=mean, std=std, color_augments=[
        dict(type='ViewColorAugment', ops=('gray',), gray_prob=1.0, views=[1]),
        dict(type='ViewColorAugment', ops=('solarize',), solarize_prob=1.0, views=[0])])
    imgs = check.photos(32)
    views = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous()
    data = dict(inputs=[list(views), list(views)])

    def levels(x):  # back from the normalised values
        return (x * torch.tensor(std).view(3, 1, 1) + torch.tensor(mean).view(3, 1, 1)).round()
    query, key = (levels(v) for v in pre(data, training=True)['inputs'])
    src = views.float()
    assert torch.equal(query, torch.where(src >= 128, 255 - src, src))
    gray = torch.floor((src[:, :1] * 19595 + src[:, 1:2] * 38470 + src[:, 2:] * 7471 + 32768)
                       / 65536)
    assert torch.equal(key, gray.expand_as(src))
    assert all(torch.equal(levels(v), src) for v in pre(data, training=False)['inputs'])
    with pytest.raises(IndexError, match='view 1 of'):
        pre(dict(inputs=[list(views)]), training=True)


def test_exact_under_the_autocast_of_a_mixed_precision_step():
    """train_step runs the preprocessor under the optimizer wrapper's autocast;
    the blur's convolutions must still sum in float32 (in bfloat16 the sums
    of up to 13 taps of 255 are off by several levels)."""
    from PIL import Image, ImageFilter
    imgs = check.photos(48)
    augment = DeviceColorAugment(ops=('blur',), blur_prob=1.0, blur_sigma=(1.5, 1.5))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = check.on_device(imgs, augment)
    for img, got in zip(imgs, out):
        ref = np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(radius=1.5)))
        assert np.abs(got - ref.astype(int)).max() <= 1


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match='unknown ops'):
        DeviceColorAugment(ops=('blur', 'sharpen'))
    with pytest.raises(ValueError, match=r"unknown keys \['sigma'\]"):
        DeviceColorAugment.from_config(dict(type='ViewColorAugment', sigma=1))
    with pytest.raises(ValueError, match="type='ViewRandAugment'"):
        DeviceColorAugment.from_config(dict(type='ViewRandAugment'))
    with pytest.raises(ValueError, match='hue range'):
        DeviceColorAugment(hue=0.7)


# ---- the _gpu-aug configs ----------------------------------------------------------------

GPU_AUG = {  # config: the PIL config it moves the colours out of
    'crosscl_r50fpn_200e_in1k_gpu-aug.py': 'crosscl_r50fpn_200e_in1k.py',
    'detco_r50_200e_in1k_gpu-aug.py': 'detco_r50_200e_in1k.py',
    'soco_r50fpn_400e_in1k_gpu-aug.py': 'soco_r50fpn_400e_in1k.py',
}


def load(name):
    from mmengine.config import Config
    return Config.fromfile(osp.join(REPO, 'configs', name))


def test_gpu_aug_configs_move_the_same_colour_configs_to_the_preprocessor():
    """Nothing changes but where the ViewColorAugment steps run; the steps
    after them in the PIL pipeline only cut (DetCo's jigsaw) or pack."""
    assert sorted(osp.basename(p) for p in glob.glob(osp.join(REPO, 'configs', '*gpu-aug*'))) \
        == sorted(GPU_AUG)
    for name, base_name in GPU_AUG.items():
        cfg, base = load(name), load(base_name)
        pipeline = base.train_dataloader.dataset.pipeline
        colours = [t for t in pipeline if t.type == 'ViewColorAugment']
        assert colours and cfg.model.data_preprocessor.color_augments == colours
        assert cfg.train_dataloader.dataset.pipeline == \
            [t for t in pipeline if t.type != 'ViewColorAugment']
        after = [t.type for t in pipeline[pipeline.index(colours[-1]) + 1:]]
        assert set(after) <= {'ViewColorAugment', 'JigsawPatches', 'PackRegionPairInputs'}
        cfg.model.data_preprocessor.pop('color_augments')
        base.model.data_preprocessor.pop('color_augments', None)
        assert cfg.model == base.model and cfg.optim_wrapper == base.optim_wrapper


def pipeline_of(cfg):
    from mmengine.dataset import Compose
    from mmengine.registry import DefaultScope
    from crosscl_mm.registry import TRANSFORMS
    with DefaultScope.overwrite_default_scope('crosscl_mm'):
        return Compose([TRANSFORMS.build(t) for t in cfg.train_dataloader.dataset.pipeline])


def seeded(pipeline, info, seed):
    import random
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return pipeline(dict(info))


def test_same_crops_give_the_same_boxes(photo_dir, tmp_path):
    """Seeded alike, each PIL config's pipeline and its _gpu-aug pipeline draw
    the same crops and flips (the colours are drawn after them) and map the
    same boxes: CrossCL's windows, SoCo's proposals, DetCo's crops. DetCo's
    jigsaw draws come after the colours in the PIL pipeline, so its patches
    are drawn from another point of the generator and not compared."""
    from test_soco_pipeline import write_records
    from crosscl_mm.datasets.proposal_records import proposal_record_path
    proposals = str(tmp_path / 'proposals')
    write_records(photo_dir, proposals)
    paths = sorted(glob.glob(osp.join(photo_dir, '*', '*.jpg')))[:4]
    for name, base_name in GPU_AUG.items():
        ours, theirs = pipeline_of(load(name)), pipeline_of(load(base_name))
        for seed, path in enumerate(paths):
            info = dict(img_path=path, sample_idx=seed, proposals_path=proposal_record_path(
                proposals, photo_dir, path))
            a, b = seeded(ours, info, seed), seeded(theirs, info, seed)
            assert [v.dtype for v in a['inputs']] == [torch.uint8] * len(a['inputs'])
            assert [v.shape for v in a['inputs']] == [v.shape for v in b['inputs']]
            meta_a, meta_b = a['data_samples'].metainfo, b['data_samples'].metainfo
            for key in ('crop_boxes', 'flip', 'flips', 'view_size', 'view_sizes'):
                if key in meta_b:
                    assert np.array_equal(meta_a[key], meta_b[key]), (name, key)
            regions = [k for k in b['data_samples'].keys() if k.startswith('regions_')]
            assert bool(regions) == (not name.startswith('detco'))
            for key in regions:
                for field, value in b['data_samples'].get(key).items():
                    assert torch.equal(a['data_samples'].get(key).get(field), value), \
                        (name, key, field)


TINY = {  # the real _gpu-aug configs made tiny: ResNet-18, 64 px views, narrow heads
    'crosscl_r50fpn_200e_in1k_gpu-aug.py': [
        'model.queue_len=64', 'model.backbone.depth=18', 'model.neck.in_channels=512',
        'model.neck.hid_channels=128', 'model.fpn.in_channels=[128,256,512]',
        'model.fpn.out_channels=64', 'train_dataloader.dataset.pipeline.1.size=64'],
    'detco_r50_200e_in1k_gpu-aug.py': [
        'model.backbone.depth=18', 'model.level_channels=[64,128,256,512]',
        'model.queue_len=64', 'train_dataloader.dataset.pipeline.1.sizes=[64,64,126,126]',
        'train_dataloader.dataset.pipeline.2.patch_size=32'],
}


def tiny_options(name, photo_dir, proposals):
    """One epoch, 2 images per process; SoCo's as tests/test_soco_training.py
    makes its recipe tiny (its SoCoViews is step 2 in both pipelines)."""
    if name.startswith('soco'):
        from test_soco_training import tiny_options as soco_tiny_options
        return soco_tiny_options(photo_dir, proposals, 'train_cfg.max_epochs=1')
    return ['--cfg-options', f'train_dataloader.dataset.data_root={photo_dir}',
            'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False', 'train_cfg.max_epochs=1',
            'default_hooks.logger.interval=1', 'default_hooks.checkpoint.interval=1',
            'env_cfg.cudnn_benchmark=False', 'randomness.seed=0', *TINY[name]]


@pytest.mark.slow  # 4-5.5 minutes on the 2 shared cores (three runs)
def test_each_gpu_aug_config_trains_on_two_cpu_processes(photo_dir, tmp_path):
    """One epoch of 8 photos, 2 processes x 2 images: finite losses, a checkpoint."""
    from test_soco_pipeline import write_records
    from crosscl_mm.utils.work_dir import read_scalars
    proposals = str(tmp_path / 'proposals')
    write_records(photo_dir, proposals)
    for name in GPU_AUG:
        work_dir = str(tmp_path / name)
        env = dict(PORT=str(free_port()), PYTHON=python_cmd()[0], OMP_NUM_THREADS='1')
        run(['bash', 'tools/dist_train.sh', osp.join(REPO, 'configs', name), '2',
             '--work-dir', work_dir, *tiny_options(name, photo_dir, proposals)],
            env=env, timeout=900)
        log = '\n'.join(open(p).read() for p in glob.glob(osp.join(work_dir, '*', '*.log')))
        assert 'Distributed training: True' in log and 'GPU number: 2' in log, log[:3000]
        dumped = open(osp.join(work_dir, name)).read()  # the config the run used
        assert 'color_augments=' in dumped and "type='ViewColorAugment'" in dumped
        records = [r for r in read_scalars(work_dir) if 'loss' in r]
        assert len(records) == 2, (name, records)  # 8 photos / (2 processes x 2 images)
        for record in records:
            losses = {k: v for k, v in record.items() if k.startswith('loss')}
            assert len(losses) > 1 and all(math.isfinite(v) for v in losses.values()), \
                (name, record)
        assert osp.exists(osp.join(work_dir, 'epoch_1.pth'))
