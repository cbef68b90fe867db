"""The paper's recipe, pinned: every pretraining config against the values of
the official code, and ViewColorAugment's probabilities and order.

Sources: the official scripts (yanjk3/CrossCL sh/crosscl_{200e,400e}_imagenet.sh,
sh/crosscl_800e_coco.sh: lr, batch 256, --moco-t 0.2, --aug-plus, --cos,
epochs), main_crosscl.py (SGD momentum 0.9 and weight decay 1e-4 at lines
54-57, dim 128, queue 65536 and momentum 0.999 at 82-87, the MoCo v2
augmentation at 234-248, MST sizes and period at 274-279),
crosscl/datasets.py:28 (windows 48 / stride 32) and crosscl/builder.py:150-166
(negative pooling per size). ReSim's P3 lattice (window 32, stride 24, 8x8)
is the ablation config's own documented choice.
"""
import glob
import os.path as osp
import random

import numpy as np
import pytest
import torch
from mmengine.config import Config

import crosscl_mm  # noqa: F401
from crosscl_mm.models.utils import negative_pool_geometry
from crosscl_mm.registry import TRANSFORMS

from conftest import REPO

CROSSCL_LATTICE = dict(window=48, stride=32, grid=6)
RESIM_P3_LATTICE = dict(window=32, stride=24, grid=8)
ALL_TERMS = {'loss_global', 'loss_p4', 'loss_p3', 'loss_p4_p3', 'loss_p3_p4'}


def recipe(epochs, lr=0.03, data='data/imagenet/train/', mst=False, terms=ALL_TERMS,
           p3=CROSSCL_LATTICE, fpn=True, amp=False, gpu_aug=False):
    return dict(epochs=epochs, lr=lr, data=data, mst=mst, terms=terms, p3=p3, fpn=fpn, amp=amp,
                gpu_aug=gpu_aug)


# Every pretraining config, by file name. A new config must be added here.
RECIPES = {
    'crosscl_r50fpn_200e_in1k.py': recipe(200),
    'crosscl_r50fpn_200e_in1k_mst.py': recipe(200, mst=True),
    'crosscl_r50fpn_400e_in1k.py': recipe(400),
    'crosscl_r50fpn_400e_in1k_mst.py': recipe(400, mst=True),
    'crosscl_r50fpn_800e_coco.py': recipe(800, lr=0.3, data='data/coco/train2017/'),
    'crosscl_r50fpn_800e_coco_mst.py': recipe(800, lr=0.3, data='data/coco/train2017/', mst=True),
    'crosscl_r50_global-only_200e_in1k.py': recipe(200, terms={'loss_global'}, fpn=False),
    'resim_r50fpn_200e_in1k.py': recipe(200, terms={'loss_global', 'loss_p4', 'loss_p3'},
                                        p3=RESIM_P3_LATTICE),
}
# The mixed-precision variants: the same recipe (tests/test_amp.py checks they differ in
# nothing but the optimizer wrapper).
RECIPES.update({name.replace('.py', '_amp.py'): dict(RECIPES[name], amp=True)
                for name in list(RECIPES) if name.startswith('crosscl_r50fpn_')})
# The photometric ops in the data preprocessor, on the device (tests/test_device_color_augment.py).
RECIPES['crosscl_r50fpn_200e_in1k_gpu-aug.py'] = dict(RECIPES['crosscl_r50fpn_200e_in1k.py'],
                                                      gpu_aug=True)


def test_every_pretraining_config_is_pinned():
    found = {osp.basename(p) for pattern in ('crosscl_*.py', 'resim_*.py')
             for p in glob.glob(osp.join(REPO, 'configs', pattern))}
    assert found == set(RECIPES)


@pytest.mark.parametrize('name', sorted(RECIPES))
def test_config_has_the_papers_recipe(name):
    expected = RECIPES[name]
    cfg = Config.fromfile(osp.join(REPO, 'configs', name))
    model = cfg.model

    # MoCo v2's global term and the contrast (main_crosscl.py defaults, --moco-t 0.2).
    assert model.type == 'CrossCL'
    assert model.loss == dict(type='InfoNCELoss', temperature=0.2)
    assert (model.queue_len, model.momentum, model.feat_dim) == (65536, 0.999, 128)
    assert model.backbone.depth == 50 and model.backbone.norm_cfg.type == 'BN'
    assert model.backbone.out_indices == (1, 2, 3) and not model.backbone.norm_eval
    assert (model.neck.in_channels, model.neck.hid_channels, model.neck.out_channels) == \
        (2048, 2048, 128)
    assert {k for k, w in model.loss_weights.items() if w} == expected['terms']
    assert all(w in (0, 1.0) for w in model.loss_weights.values())
    if expected['fpn']:
        assert model.fpn.out_channels == 256 and model.fpn.in_channels == (512, 1024, 2048)
        assert model.fpn.norm_cfg is None  # the scripts do not pass --fpn-bn
        assert dict(model.region_levels) == dict(p3=8, p4=16)
    else:
        assert model.fpn is None
    # P4 negatives from every rank, P3 negatives from the rank's own images
    # (concat_all_gather on neg_p4 only, builder.py:157), pooled 3/1, 4/2, 5/2.
    assert model.gather_negatives == dict(p4=True, p3=False)
    assert model.get('neg_pool') is None
    assert [negative_pool_geometry(s) for s in (224, 384, 480)] == [(3, 1), (4, 2), (5, 2)]
    assert model.data_preprocessor.mean == (123.675, 116.28, 103.53)  # ImageNet RGB x 255
    assert model.data_preprocessor.std == (58.395, 57.12, 57.375)

    # The pipeline, in the reference's order, with its parameters as built.
    loader = cfg.train_dataloader
    assert loader.dataset.data_root == expected['data']
    pipeline = loader.dataset.pipeline
    if expected['gpu_aug']:  # the same colour config, run by the data preprocessor
        (colors,) = model.data_preprocessor.color_augments
        pipeline = pipeline[:3] + [colors] + pipeline[3:]
    else:
        assert not model.data_preprocessor.get('color_augments')
    assert [t['type'] for t in pipeline] == ['LoadImageRGB', 'PairedRandomResizedCrop',
                                             'SlidingWindowRegions', 'ViewColorAugment',
                                             'PackRegionPairInputs']
    crop, regions, color = (TRANSFORMS.build(t) for t in pipeline[1:4])
    assert (crop.size, crop.scale, crop.ratio, crop.flip_prob) == \
        (224, (0.2, 1.0), (3 / 4, 4 / 3), 0.5)
    assert regions.base_size == 224
    assert regions.windows == dict(p4=CROSSCL_LATTICE, p3=expected['p3'])
    # Blur, then jitter, then grayscale, on both views, no solarize (main_crosscl.py:239-244).
    assert color.ops == ('blur', 'jitter', 'gray') and color.views is None
    assert color.solarize_prob == 0
    assert (color.blur_prob, color.blur_sigma, color.jitter_prob) == (0.5, (0.1, 2.0), 0.8)
    jitter = color.jitter  # ColorJitter(0.4, 0.4, 0.4, 0.1)
    assert [list(map(float, r)) for r in (jitter.brightness, jitter.contrast, jitter.saturation,
                                          jitter.hue)] == \
        [[0.6, 1.4], [0.6, 1.4], [0.6, 1.4], [-0.1, 0.1]]
    assert color.grayscale.p == 0.2

    # 8 GPUs x 32 = 256 images per step; SGD, cosine over the whole run.
    assert loader.batch_size == 32 and loader.drop_last
    assert cfg.auto_scale_lr.base_batch_size == 256
    assert cfg.optim_wrapper.optimizer == dict(type='SGD', lr=expected['lr'], momentum=0.9,
                                               weight_decay=1e-4)
    assert cfg.optim_wrapper.type == \
        ('MixedPrecisionOptimWrapper' if expected['amp'] else 'OptimWrapper')
    assert cfg.train_cfg.max_epochs == expected['epochs']
    (schedule,) = cfg.param_scheduler
    assert schedule.type == 'CosineAnnealingLR' and schedule.by_epoch
    assert (schedule.T_max, schedule.begin, schedule.end) == (expected['epochs'], 0,
                                                              expected['epochs'])
    assert schedule.get('eta_min', 0) == 0
    mst = [h for h in cfg.get('custom_hooks', []) if h['type'] == 'MultiScaleTrainingHook']
    if expected['mst']:
        assert len(mst) == 1 and tuple(mst[0]['sizes']) == (224, 384, 480)
        assert mst[0]['fraction'] == 0.01
    else:
        assert not mst


# --- ViewColorAugment ---------------------------------------------------------
BLUE, YELLOW = (30, 60, 200), (220, 180, 40)


def two_colour_image(height=4, width=32):
    """Blue left half, yellow right half: colour ops act per pixel and keep two
    colours; only the blur creates new ones, along the edge."""
    img = np.empty((height, width, 3), np.uint8)
    img[:, :width // 2], img[:, width // 2:] = BLUE, YELLOW
    return img


def gray_of(rgb):
    from PIL import Image
    return int(np.asarray(Image.new('RGB', (1, 1), rgb).convert('L'))[0, 0])


def classify(view):
    """Which ops made this view, read from its pixels."""
    colours = np.unique(view.reshape(-1, 3), axis=0)
    grayscale = bool((view[..., 0] == view[..., 1]).all() and (view[..., 1] == view[..., 2]).all())
    corner = view[0, 0]  # far from the edge: only colour ops reach it
    plain = np.array([gray_of(BLUE)] * 3) if grayscale else np.array(BLUE)
    return dict(blur=len(colours) > 2, jitter=not np.array_equal(corner, plain), gray=grayscale)


def visible_blur_fraction(img, sigma=(0.1, 2.0)):
    """PIL's Gaussian blur leaves this image unchanged below some radius;
    the fraction of ``uniform(sigma)`` draws above it."""
    from PIL import Image, ImageFilter
    for radius in np.arange(sigma[0], sigma[1], 0.001).tolist():
        out = np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(radius=radius)))
        if not np.array_equal(out, img):
            return (sigma[1] - radius) / (sigma[1] - sigma[0])
    return 0.0


def test_view_color_augment_applies_each_op_with_its_probability():
    """Seeded draws: blur 0.5, jitter 0.8, grayscale 0.2, each view drawn on
    its own. The tolerance (0.04, over three standard errors at 1600 views)
    fails a probability that is off by 0.05 or more."""
    img = two_colour_image()
    augment = TRANSFORMS.build(dict(type='ViewColorAugment'))
    random.seed(0)
    torch.manual_seed(0)
    seen = []
    for _ in range(800):
        views = augment(dict(img=[img, img]))['img']
        seen += [classify(v) for v in views]
    freq = {op: np.mean([s[op] for s in seen]) for op in ('blur', 'jitter', 'gray')}
    expected = dict(blur=0.5 * visible_blur_fraction(img), jitter=0.8, gray=0.2)
    assert expected['blur'] > 0.48
    for op in freq:
        assert abs(freq[op] - expected[op]) < 0.04, (op, freq, expected)
    # The two views of one call are drawn independently.
    both_gray = np.mean([a['gray'] and b['gray'] for a, b in zip(seen[::2], seen[1::2])])
    assert abs(both_gray - 0.04) < 0.03, both_gray


def distance_to_segment(points, a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    t = np.clip((points - a) @ (b - a) / ((b - a) @ (b - a)), 0, 1)
    return np.linalg.norm(points - (a + t[:, None] * (b - a)), axis=1)


def test_view_color_augment_blurs_before_the_colour_jitter():
    """The order matters where one op is linear and the other is not: a
    brightness gain saturates at 255. Blurred first, the edge between a
    yellow and a blue half is brightened along with everything else and
    leaves the straight line between the two brightened (clipped) colours;
    brightened first, the blur mixes the clipped colours and the edge stays
    on that line, to rounding. Every draw here blurs and brightens by 1.3."""
    img = np.empty((32, 32, 3), np.uint8)
    img[:, :16], img[:, 16:] = (250, 250, 20), (20, 20, 250)
    augment = TRANSFORMS.build(dict(type='ViewColorAugment', blur_prob=1.0, jitter_prob=1.0,
                                    gray_prob=0.0, brightness=(1.3, 1.3), contrast=0,
                                    saturation=0, hue=0))
    random.seed(1)
    torch.manual_seed(1)
    off_line = []
    for _ in range(20):
        (view,) = augment(dict(img=[img]))['img']
        assert view[0, 0].tolist() == [255, 255, 26] and view[0, -1].tolist() == [26, 26, 255]
        off_line.append(distance_to_segment(view[0].astype(float), view[0, 0], view[0, -1]).max())
    # PIL leaves the image unblurred for the smallest radii, about 2% of draws.
    assert sum(d > 20 for d in off_line) >= 18, off_line


# --- RegionCL-M, RegionCL-D and DenseCL (docs/regioncl.md) ---------------------
# Sources: Annbless/RegionCL configs/selfsup/regionCL-M/regionCLM-r50.py (RegionCL-M:
# 8 x 128, SGD 0.15, cosine per epoch to 0, 200 epochs, float32, T 0.2, cells 3-5);
# CoinCheung/DenseCL dist_train.sh:17,28 and main_densecl.py (RegionCL-D and DenseCL:
# batch 256 on 8 GPUs, lr 0.03, --moco-t 0.2, --cos with 5 warmup epochs, AMP).
def regioncl_recipe(variant, depth=50, region=1.0, amp=None):
    return dict(variant=variant, depth=depth, region=region, amp=amp)


REGIONCL_RECIPES = {
    'regioncl-m_r50_200e_in1k.py': regioncl_recipe('M'),
    'regioncl-m_r50_200e_in1k_amp.py': regioncl_recipe('M', amp='auto'),
    'regioncl-d_r50_200e_in1k.py': regioncl_recipe('D', amp='float16'),
    'regioncl-d_r101_200e_in1k.py': regioncl_recipe('D', depth=101, amp='float16'),
    'densecl_r101_200e_in1k.py': regioncl_recipe('D', depth=101, region=0.0, amp='float16'),
}


def epoch_learning_rates(cfg, epochs):
    """The learning rate of each epoch under the config's schedulers, stepped
    once per epoch in list order as ParamSchedulerHook does."""
    import warnings
    from mmengine.registry import PARAM_SCHEDULERS
    opt = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=cfg.optim_wrapper.optimizer.lr)
    schedulers = []
    for s in cfg.param_scheduler:
        s = dict(s)
        assert s.pop('convert_to_iter_based', False) is False and s['by_epoch']
        schedulers.append(PARAM_SCHEDULERS.build(dict(s, optimizer=opt)))
    rates = []
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # scheduler.step() before optimizer.step()
        for _ in range(epochs):
            rates.append(opt.param_groups[0]['lr'])
            for s in schedulers:
                s.step()
    return rates


def test_every_regioncl_config_is_pinned():
    found = {osp.basename(p) for pattern in ('regioncl-*.py', 'densecl_*.py')
             for p in glob.glob(osp.join(REPO, 'configs', pattern))}
    assert found == set(REGIONCL_RECIPES)


@pytest.mark.parametrize('name', sorted(REGIONCL_RECIPES))
def test_regioncl_config_has_the_recipe_it_ran_with(name):
    import math
    expected = REGIONCL_RECIPES[name]
    cfg = Config.fromfile(osp.join(REPO, 'configs', name))
    model = cfg.model
    m = expected['variant'] == 'M'
    assert model.type == ('RegionCLM' if m else 'RegionCLD')
    assert (model.queue_len, model.feat_dim, model.momentum) == (65536, 128, 0.999)
    assert model.loss == dict(type='InfoNCELoss', temperature=0.2)  # both terms (head2, B1)
    backbone = model.backbone
    assert (backbone.type, backbone.depth, tuple(backbone.out_indices)) == \
        ('mmdet.ResNet', expected['depth'], (3,))
    assert backbone.norm_cfg.type == 'BN' and not backbone.norm_eval
    assert not backbone.zero_init_residual
    assert (model.neck.type, model.neck.in_channels, model.neck.hid_channels,
            model.neck.out_channels) == ('GlobalProjectionNeck', 2048, 2048, 128)
    assert model.neck.get('norm_cfg') is None
    assert model.paste_intra_negative == 'as_released'
    if m:
        # OpenSelfSup's kaiming fan_in init of convs and MLP (resnet.py:390-395, RegionCLM.py:74)
        assert backbone.init_cfg[0] == dict(type='Kaiming', layer='Conv2d', mode='fan_in')
        assert model.neck.init_cfg == dict(type='Kaiming', layer='Linear', mode='fan_in')
        assert model.swap == dict(sampler='official', pairing='reversal', min_cells=3,
                                  max_cells=5, stride=32)
        assert model.loss_weights == dict(loss_instance=1.0, loss_region=1.0)
    else:
        assert backbone.get('init_cfg') is None  # torchvision's kaiming fan_out
        dense = model.dense_neck
        assert (dense.type, dense.in_channels, dense.hid_channels, dense.out_channels) == \
            ('DenseProjectionNeck', 2048, 2048, 128)
        assert model.swap == dict(sampler='grid', pairing='random', min_cells=3, max_cells=5,
                                  stride=32)
        assert model.loss_weights == dict(loss_global=0.5, loss_dense=0.5,
                                          loss_region=expected['region'])

    # MoCo v2's views at 224 px, each drawn on its own, the originals' colour order.
    loader = cfg.train_dataloader
    pipeline = loader.dataset.pipeline
    assert [t['type'] for t in pipeline] == ['LoadImageRGB', 'MultiViewRandomResizedCrop',
                                             'ViewColorAugment', 'PackRegionPairInputs']
    crop, color = (TRANSFORMS.build(t) for t in pipeline[1:3])
    assert (crop.sizes, crop.scales, crop.ratio, crop.flip_prob) == \
        ((224, 224), ((0.2, 1.0), (0.2, 1.0)), (3 / 4, 4 / 3), 0.5)
    assert color.ops == ('jitter', 'gray', 'blur') and color.views is None
    assert (color.jitter_prob, color.grayscale.p, color.blur_prob, color.blur_sigma,
            color.solarize_prob) == (0.8, 0.2, 0.5, (0.1, 2.0), 0)
    assert [list(map(float, r)) for r in (color.jitter.brightness, color.jitter.contrast,
                                          color.jitter.saturation, color.jitter.hue)] == \
        [[0.6, 1.4], [0.6, 1.4], [0.6, 1.4], [-0.1, 0.1]]
    assert model.data_preprocessor.mean == (123.675, 116.28, 103.53)
    assert model.data_preprocessor.std == (58.395, 57.12, 57.375)

    # Batch, optimiser, precision and the learning rate of every epoch.
    batch, lr = (128, 0.15) if m else (32, 0.03)
    assert loader.batch_size == batch and loader.drop_last
    assert cfg.auto_scale_lr.base_batch_size == 8 * batch
    assert cfg.optim_wrapper.optimizer == dict(type='SGD', lr=lr, momentum=0.9,
                                               weight_decay=1e-4)
    if expected['amp'] is None:
        assert cfg.optim_wrapper.type == 'OptimWrapper'
    else:
        assert cfg.optim_wrapper.type == 'MixedPrecisionOptimWrapper'
        assert (cfg.optim_wrapper.dtype, cfg.optim_wrapper.loss_scale) == \
            (expected['amp'], 'dynamic')
    assert cfg.train_cfg.max_epochs == 200
    if m:  # OpenSelfSup's CosineAnnealing, min_lr 0; the log: 1.500e-01, 7.618e-02, 9.253e-06
        formula = [lr * (1 + math.cos(math.pi * e / 200)) / 2 for e in range(200)]
        assert [f'{formula[e]:.3e}' for e in (0, 99, 199)] == ['1.500e-01', '7.618e-02',
                                                               '9.253e-06']
    else:  # main_densecl.py:400-416 with --warmup-epochs 5, --epochs 200
        formula = [lr * ((e + 1) / 5 if e < 5 else (1 + math.cos(math.pi * (e - 4) / 196)) / 2)
                   for e in range(200)]
    assert epoch_learning_rates(cfg, 200) == pytest.approx(formula, rel=1e-9, abs=1e-12)


# --- SoCo-C4 ------------------------------------------------------------------
# Official tools/SoCo_C4_{100,400}ep.sh over contrast/option.py: --batch_size 128 on
# 8 GPUs, --base_lr 1.0 (x 1024 / 256), LARS, --weight_decay 1e-5, --warmup_epoch 10,
# --crop 0.6, --contrast_momentum 0.99, --select_k 4, --padding_k 4, --max_tries 5
# (default), --aug ImageAsymBboxCutout (cutout 0.5, 0.1-0.3; no jitter), and the model's
# own RoIAlign size 14 (resnet.py:148-150) and MLPs (mlps.py:87-92).
SOCO_C4_RECIPES = {f'soco_r50c4_{e}e_in1k{amp}.py': dict(epochs=e, amp=bool(amp))
                   for e in (100, 400) for amp in ('', '_amp')}


def test_every_soco_c4_config_is_pinned():
    found = {osp.basename(p) for p in glob.glob(osp.join(REPO, 'configs', 'soco_r50c4_*.py'))}
    assert found == set(SOCO_C4_RECIPES)


@pytest.mark.parametrize('name', sorted(SOCO_C4_RECIPES))
def test_soco_c4_config_has_the_official_recipe(name):
    expected = SOCO_C4_RECIPES[name]
    cfg = Config.fromfile(osp.join(REPO, 'configs', name))
    m = cfg.model
    assert (m.type, m.base_momentum, m.roi_size) == ('SoCoC4', 0.99, 14)
    b = m.backbone
    assert (b.depth, b.num_stages, tuple(b.out_indices), tuple(b.strides), b.style,
            b.norm_eval, b.zero_init_residual) == (50, 3, (2,), (1, 2, 2), 'pytorch', False, True)
    assert (m.head.type, m.head.depth, m.head.base_channels, m.head.stride, m.head.style,
            m.head.zero_init_residual) == ('Res5BoxHead', 50, 64, 2, 'pytorch', True)
    assert (m.projector.in_channels, m.projector.hid_channels, m.projector.out_channels,
            m.predictor.in_channels, m.predictor.hid_channels, m.predictor.out_channels) == \
        (2048, 4096, 256, 256, 4096, 256)
    assert m.loss == dict(type='MatchedCosineLoss') and cfg.sync_bn == 'torch'

    loader = cfg.train_dataloader
    assert loader.batch_size == 128 and loader.drop_last
    assert cfg.auto_scale_lr.base_batch_size == 8 * 128
    assert cfg.optim_wrapper.optimizer == dict(type='LARS', lr=4.0, momentum=0.9,
                                               weight_decay=1e-5, trust_coefficient=0.001,
                                               eps=1e-8)
    assert cfg.optim_wrapper.type == \
        ('MixedPrecisionOptimWrapper' if expected['amp'] else 'OptimWrapper')
    warmup, cosine = cfg.param_scheduler
    assert (warmup.type, warmup.start_factor, warmup.begin, warmup.end) == ('LinearLR', 0.01, 0, 10)
    assert (cosine.type, cosine.T_max, cosine.eta_min, cosine.begin, cosine.end) == \
        ('CosineAnnealingLR', expected['epochs'] - 10, 1e-6, 10, expected['epochs'])
    assert cfg.train_cfg.max_epochs == expected['epochs']

    pipeline = loader.dataset.pipeline
    assert [t.type for t in pipeline] == ['LoadImageRGB', 'LoadProposals', 'SoCoViews',
                                          'ViewColorAugment', 'ViewColorAugment',
                                          'CutoutInBoxes', 'PackRegionPairInputs']
    views, color1, color2, cutout = (TRANSFORMS.build(t) for t in pipeline[2:6])
    assert (views.view_sizes, views.downscaled_view_size, views.crop_scale, views.flip_prob,
            views.select_k, views.padding_k, views.max_tries, views.jitter_prob) == \
        ((224, 224), None, (0.6, 1.0), 0.5, 4, 4, 5, 0.0)
    assert color1.views == (0,) and color1.blur_prob == 1.0
    assert color1.ops == ('jitter', 'gray', 'blur')
    assert color2.views == (1,) and (color2.blur_prob, color2.solarize_prob) == (0.1, 0.2)
    assert color2.ops == ('jitter', 'gray', 'blur', 'solarize')
    for color in (color1, color2):
        jitter = color.jitter  # ColorJitter(0.4, 0.4, 0.2, 0.1), p 0.8; grayscale 0.2
        assert [list(map(float, r)) for r in (jitter.brightness, jitter.contrast,
                                              jitter.saturation, jitter.hue)] == \
            [[0.6, 1.4], [0.6, 1.4], [0.8, 1.2], [-0.1, 0.1]]
        assert color.jitter_prob == 0.8 and color.grayscale.p == 0.2
    assert (cutout.views, cutout.prob, cutout.area_ratio) == ((1,), 0.5, (0.1, 0.3))
