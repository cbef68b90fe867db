"""DetCo's views: jigsaw geometry against independent arithmetic, patches on
a coordinate-coded image, patch order, and the config's pipeline packed for
the model."""
import os.path as osp
import random

import numpy as np
import pytest
import torch

import crosscl_mm  # noqa: F401
from crosscl_mm.datasets.geometry import boxes_at_offsets, grid_cells, view_boxes_to_image
from crosscl_mm.registry import TRANSFORMS

from conftest import REPO, skimage_photo


def test_grid_cells_and_boxes_at_offsets():
    cells = grid_cells(255, 3)
    expected = [[85 * col, 85 * row, 85 * col + 85, 85 * row + 85]
                for row in range(3) for col in range(3)]
    assert cells.tolist() == expected
    assert grid_cells(126, 3)[5].tolist() == [84, 42, 126, 84]  # row 1, column 2
    offsets = np.array([[0, 21]] * 9)
    boxes = boxes_at_offsets(cells, offsets, 64)
    assert boxes[4].tolist() == [85, 85 + 21, 85 + 64, 85 + 21 + 64]


def _point_to_image(u, v, crop, size, flipped):
    """One view point through the image operations, undone one at a time:
    un-flip the view, un-resize, un-crop."""
    if flipped:
        u = size - u
    x0, y0, x1, y1 = crop
    return x0 + u * (x1 - x0) / size, y0 + v * (y1 - y0) / size


def test_view_boxes_to_image_matches_point_mapping():
    rng = random.Random(0)
    for _ in range(200):
        size = rng.choice([64, 224, 255])
        w, h = rng.randint(20, 500), rng.randint(20, 500)
        x, y = rng.randint(0, 300), rng.randint(0, 300)
        crop = (x, y, x + w, y + h)
        flipped = rng.random() < 0.5
        box = sorted(rng.uniform(0, size) for _ in range(2)) + sorted(rng.uniform(0, size)
                                                                      for _ in range(2))
        box = [box[0], box[2], box[1], box[3]]
        out = view_boxes_to_image(np.array([box]), np.array(crop), size, flipped)[0]
        corners = [_point_to_image(u, v, crop, size, flipped)
                   for u in (box[0], box[2]) for v in (box[1], box[3])]
        xs, ys = [c[0] for c in corners], [c[1] for c in corners]
        assert out == pytest.approx([min(xs), min(ys), max(xs), max(ys)], abs=1e-9)


def coordinate_image(width=224, height=192):
    """Red = x, green = y of each pixel: a view of it shows where it came from."""
    ys, xs = np.mgrid[0:height, 0:width]
    return np.stack([xs, ys, np.full_like(xs, 7)], axis=-1).astype(np.uint8)


def decoded_positions(view):
    """Image position (pixel-centre coordinates) each view pixel shows."""
    return view[..., 0].astype(np.float64), view[..., 1].astype(np.float64)


def expected_positions(box, side, flipped):
    """Positions a ``side``-pixel square showing image region ``box`` holds,
    mirrored when the view was flipped (independent of the code under test)."""
    x0, y0, x1, y1 = box
    centres = (np.arange(side) + 0.5) / side
    xs = x1 - centres * (x1 - x0) if flipped else x0 + centres * (x1 - x0)
    ys = y0 + centres * (y1 - y0)
    # The ramp's value at continuous position s is s - 0.5 (pixel k is centred at k + 0.5).
    return (np.broadcast_to(xs - 0.5, (side, side)),
            np.broadcast_to((ys - 0.5)[:, None], (side, side)))


@pytest.mark.parametrize('seed', range(6))
def test_patches_show_the_pixels_their_boxes_say(seed):
    torch.manual_seed(seed)
    crop = TRANSFORMS.build(dict(type='MultiViewRandomResizedCrop', sizes=(224, 224, 255, 255),
                                 scales=((0.2, 1.0), (0.2, 1.0), (0.6, 1.0), (0.6, 1.0))))
    jigsaw = TRANSFORMS.build(dict(type='JigsawPatches', views=(2, 3), grid=3, patch_size=64))
    results = crop(dict(img=coordinate_image()))
    views = [v.copy() for v in results['img']]
    results = jigsaw(results)

    for i in range(4):  # each view shows its crop box, mirrored when flipped
        xs, ys = decoded_positions(views[i])
        ex, ey = expected_positions(results['crop_boxes'][i], views[i].shape[0],
                                    results['flips'][i])
        np.testing.assert_allclose(xs, ex, atol=1.05)
        np.testing.assert_allclose(ys, ey, atol=1.05)

    for v, index in enumerate((2, 3)):
        stack, cells = results['img'][index], results['patch_cells'][v]
        assert stack.shape == (9, 64, 64, 3) and stack.dtype == np.uint8
        assert sorted(cells.tolist()) == list(range(9))
        crop_box, flipped = results['crop_boxes'][index], bool(results['flips'][index])
        for k in range(9):
            x0, y0, x1, y1 = results['patch_boxes'][v, k]
            row, col = divmod(int(cells[k]), 3)
            # inside cell (row, col) of the 85-pixel grid, 64 pixels square, integer offset
            assert 85 * col <= x0 and x1 <= 85 * col + 85 and 85 * row <= y0 and y1 <= 85 * row + 85
            assert (x1 - x0, y1 - y0) == (64, 64) and x0 == int(x0) and y0 == int(y0)
            np.testing.assert_array_equal(stack[k], views[index][int(y0):int(y1), int(x0):int(x1)])
            # the box in the image, by hand: un-flip, un-resize, un-crop
            u0, u1 = (255 - x1, 255 - x0) if flipped else (x0, x1)
            scale_x = (crop_box[2] - crop_box[0]) / 255
            scale_y = (crop_box[3] - crop_box[1]) / 255
            box_in_image = [crop_box[0] + u0 * scale_x, crop_box[1] + y0 * scale_y,
                            crop_box[0] + u1 * scale_x, crop_box[1] + y1 * scale_y]
            assert results['patch_boxes_in_image'][v, k] == pytest.approx(box_in_image)
            # and the patch's pixels come from there
            xs, ys = decoded_positions(stack[k])
            ex, ey = expected_positions(box_in_image, 64, flipped)
            np.testing.assert_allclose(xs, ex, atol=1.05)
            np.testing.assert_allclose(ys, ey, atol=1.05)


def test_patch_order_independent_by_default_shared_on_request():
    img = coordinate_image()
    crop = TRANSFORMS.build(dict(type='MultiViewRandomResizedCrop'))
    torch.manual_seed(0)
    independent = TRANSFORMS.build(dict(type='JigsawPatches'))
    orders = [independent(crop(dict(img=img)))['patch_cells'] for _ in range(10)]
    assert any((o[0] != o[1]).any() for o in orders)
    assert len({tuple(o[0]) for o in orders}) > 5  # shuffled, not a fixed order
    shared = TRANSFORMS.build(dict(type='JigsawPatches', shared_order=True))
    for _ in range(10):
        out = shared(crop(dict(img=img)))
        assert (out['patch_cells'][0] == out['patch_cells'][1]).all()
        # the offsets in the cells are still drawn per view
    with pytest.raises(ValueError, match='divisible by grid=3'):
        TRANSFORMS.build(dict(type='JigsawPatches'))(dict(img=[img[:100, :100]] * 4))


def test_config_pipeline_packs_views_and_patch_sets_for_the_model():
    from mmengine.config import Config
    from mmengine.dataset import Compose, pseudo_collate
    cfg = Config.fromfile(osp.join(REPO, 'configs/detco_r50_200e_in1k.py'))
    pipeline = Compose([TRANSFORMS.build(t) for t in cfg.train_dataloader.dataset.pipeline])
    torch.manual_seed(0)
    batch = pseudo_collate([pipeline(dict(img_path=skimage_photo('astronaut.png')))
                            for _ in range(2)])
    shapes = [tuple(v.shape) for v in batch['inputs'][0] + batch['inputs'][1]]
    assert [tuple(x[0].shape) for x in batch['inputs']] == \
        [(3, 224, 224), (3, 224, 224), (9, 3, 64, 64), (9, 3, 64, 64)], shapes
    sample = batch['data_samples'][0]
    assert sample.patch_boxes.shape == (2, 9, 4) and sample.patch_cells.shape == (2, 9)
    assert sample.crop_boxes.shape == (4, 4) and sample.flips.shape == (4,)

    from crosscl_mm.registry import MODELS
    pre = MODELS.build(cfg.model.data_preprocessor)
    out = pre(batch, training=True)['inputs']
    assert [tuple(x.shape) for x in out] == [(2, 3, 224, 224), (2, 3, 224, 224),
                                             (2, 9, 3, 64, 64), (2, 9, 3, 64, 64)]
    patches = torch.stack(batch['inputs'][2]).float()  # (2, 9, 3, 64, 64), uint8 values
    mean = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1)
    for i in range(2):
        for p in range(9):
            torch.testing.assert_close(out[2][i, p], (patches[i, p] - mean) / std)
    # a BGR pipeline's patches get their channels reversed, not their order
    bgr = MODELS.build(dict(cfg.model.data_preprocessor, bgr_to_rgb=True))
    flipped = bgr(batch)['inputs'][2]
    for i in range(2):
        for p in range(9):
            torch.testing.assert_close(flipped[i, p], (patches[i, p].flip(0) - mean) / std)


def test_color_augment_on_chosen_views_and_per_patch_on_a_stack():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    stack = np.stack([image[:16, :16]] * 9)
    aug = TRANSFORMS.build(dict(type='ViewColorAugment', views=(1, 2), blur_prob=0,
                                jitter_prob=1.0, gray_prob=0))
    torch.manual_seed(0)
    out = aug(dict(img=[image.copy(), image.copy(), stack.copy()]))['img']
    np.testing.assert_array_equal(out[0], image)  # not chosen: untouched
    assert not np.array_equal(out[1], image)
    assert out[2].shape == stack.shape
    # nine identical patches, nine draws
    assert len({out[2][k].tobytes() for k in range(9)}) == 9


# --- colour augmentation: OpenSelfSup's MoCo v2 -------------------------------
# open-mmlab/OpenSelfSup configs/selfsup/moco/r50_v2.py:33-53 @1db69ec: ColorJitter
# (0.4, 0.4, 0.4, 0.1) p 0.8, RandomGrayscale 0.2, GaussianBlur sigma (0.1, 2.0) p 0.5,
# in that order (hue 0.1 since its commit bc05268, "fix moco v2 hue").
OPENSELFSUP_MOCO_V2 = dict(ops=('jitter', 'gray', 'blur'), jitter_prob=0.8, brightness=0.4,
                           contrast=0.4, saturation=0.4, hue=0.1, gray_prob=0.2, blur_prob=0.5,
                           blur_sigma=(0.1, 2.0))


def color_steps(config):
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, 'configs', config)).to_dict()
    return [t for t in cfg['train_dataloader']['dataset']['pipeline']
            if t['type'] == 'ViewColorAugment']


def edge_off_line(step, seed=1, draws=20):
    """How far the blue/yellow edge of each view leaves the line between the
    two brightened colours: ~0 when the brightness gain (clipping at 255)
    comes before the blur, > 20 when after (test_recipe's construction)."""
    from test_recipe import distance_to_segment
    img = np.empty((32, 32, 3), np.uint8)
    img[:, :16], img[:, 16:] = (250, 250, 20), (20, 20, 250)
    augment = TRANSFORMS.build(dict(step, views=None, blur_prob=1.0, jitter_prob=1.0,
                                    gray_prob=0.0, brightness=(1.3, 1.3), contrast=0,
                                    saturation=0, hue=0))
    random.seed(seed)
    torch.manual_seed(seed)
    distances = []
    for _ in range(draws):
        (view,) = augment(dict(img=[img]))['img']
        distances.append(distance_to_segment(view[0].astype(float), view[0, 0],
                                             view[0, -1]).max())
    return distances


def test_colour_augment_is_openselfsups_moco_v2_and_the_old_order_an_ablation():
    default = color_steps('detco_r50_200e_in1k.py')
    assert [tuple(s.pop('views')) for s in default] == [(0, 1), (2, 3)]
    for step in default:
        step['ops'], step['blur_sigma'] = tuple(step['ops']), tuple(step['blur_sigma'])
        assert step == dict(type='ViewColorAugment', **OPENSELFSUP_MOCO_V2)
    ablation = color_steps('detco_r50_200e_in1k_blur-first.py')
    assert [tuple(s['ops']) for s in ablation] == [('blur', 'jitter', 'gray')] * 2
    # The order, seen in the pixels: jitter, then blur (default); blur first (ablation).
    assert max(edge_off_line(default[0])) < 3
    assert sum(d > 20 for d in edge_off_line(ablation[0])) >= 18
    # Each op at OpenSelfSup's probability, in the default order.
    from test_recipe import classify, two_colour_image, visible_blur_fraction
    img = two_colour_image()
    augment = TRANSFORMS.build(dict(default[0], views=None))
    random.seed(0)
    torch.manual_seed(0)
    seen = [classify(v) for _ in range(800) for v in augment(dict(img=[img, img]))['img']]
    freq = {op: np.mean([s[op] for s in seen]) for op in ('blur', 'jitter', 'gray')}
    expected = dict(blur=0.5 * visible_blur_fraction(img), jitter=0.8, gray=0.2)
    for op in freq:
        assert abs(freq[op] - expected[op]) < 0.04, (op, freq, expected)
