"""SoCo's data: boxes through crops and per-view flips against the official
arithmetic (re-derived here from github hologerry/SoCo contrast/data/) and
against the images themselves; the retry law; FPN levels; proposal records."""
import json
import math
import os
import random
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.dataset import Compose

import crosscl_mm  # noqa: F401
from crosscl_mm.datasets import ProposalsFolder
from crosscl_mm.datasets.geometry import (boxes_as_crop_fractions, flip_crop_fractions,
                                          fpn_levels_by_size, proposal_corners)
from crosscl_mm.datasets.proposal_records import (ProposalRecordError, proposal_record_path,
                                                  write_proposal_record)
from crosscl_mm.datasets.transforms.soco_views import WHOLE_VIEW_ID, select_views, soco_box_sets
from crosscl_mm.registry import TRANSFORMS

# ---------------------------------------------------------------------------
# The official data arithmetic, written from its definitions (bboxs_utils.py,
# props_utils.py, transform_ops.py). Crops are official params
# (top, left, height, width); boxes carry their id in a 5th column.


def official_overlap_props(props, p1, p2):  # cal_overlap_params + get_overlap_props
    y11, x11, h1, w1 = p1
    y21, x21, h2, w2 = p2
    y12, x12, y22, x22 = y11 + h1 - 1, x11 + w1 - 1, y21 + h2 - 1, x21 + w2 - 1
    if not (x11 < x22 and x21 < x12 and y11 < y22 and y21 < y12):
        return np.zeros((0, 5))
    px1, py1, px2, py2 = max(x11, x21), max(y11, y21), min(x12, x22), min(y12, y22)
    keep = [b for b in props if px1 < b[2] and b[0] < px2 and py1 < b[3] and b[1] < py2]
    return np.array(keep).reshape(-1, 5)


def official_jitter(props, factors):  # jitter_props, with the drawn factors given
    out = []
    for prop, j in zip(props, factors):
        new = prop.astype(float).copy()
        if np.any(j):
            w, h = prop[2] - prop[0] + 1, prop[3] - prop[1] + 1
            new[0] = prop[0] + j[0] * w
            new[1] = prop[1] + j[1] * h
            new[2] = new[0] + (w + j[2] * w) - 1
            new[3] = new[1] + (h + j[3] * h) - 1
        out.append(new)
    return np.array(out).reshape(-1, 5)


def official_clip(boxes, top, left, height, width, fallback_id):  # clip_bboxs
    ix1, iy1, ix2, iy2 = left, top, left + width - 1, top + height - 1
    out = []
    for bx1, by1, bx2, by2, bid in boxes:
        if ix1 < bx2 and bx1 < ix2 and iy1 < by2 and by1 < iy2:
            out.append([max(ix1, bx1) - ix1, max(iy1, by1) - iy1,
                        min(ix2, bx2) - ix1, min(iy2, by2) - iy1, bid])
    if not out:  # whole view; the official id is 1 (B6), ours WHOLE_VIEW_ID
        return np.array([[0, 0, width - 1, height - 1, fallback_id]], dtype=float)
    return np.array(out, dtype=float)


def official_pad(boxes, common_ids, padding_k, rs):  # pad_bboxs_with_common
    pad = padding_k - boxes.shape[0]
    if pad <= 0:
        return boxes
    common = boxes[np.isin(boxes[:, 4], common_ids)]
    return np.concatenate([boxes, common[rs.choice(common.shape[0], pad)]])


def official_levels(boxes, height, width, size, limits):  # resize_bboxs + assign_bboxs...
    resized = np.copy(boxes).astype(float)
    resized[:, 0] = resized[:, 0] / width * size
    resized[:, 1] = resized[:, 1] / height * size
    resized[:, 2] = resized[:, 2] / width * size
    resized[:, 3] = resized[:, 3] / height * size
    resized = resized.astype(int)
    levels = []
    for x1, y1, x2, y2, _ in resized:
        s = math.sqrt((y2 - y1 + 1) * (x2 - x1 + 1))
        levels.append(next((j for j, limit in enumerate(limits) if s <= limit), -1))
    return np.array(levels)


def official_tensor(boxes, height, width, flip):  # bboxs_to_tensor + RandomHorizontalFlip*
    t = np.copy(boxes).astype(float)
    t[:, 0], t[:, 2] = t[:, 0] / width, t[:, 2] / width
    t[:, 1], t[:, 3] = t[:, 1] / height, t[:, 3] / height
    t = torch.Tensor(t)
    if flip:
        new = t.clone()
        new[:, 0], new[:, 2] = 1.0 - t[:, 2], 1.0 - t[:, 0]
        t = new
    return t[:, :4].numpy()


def as_params(crop):
    x0, y0, x1, y1 = crop
    return y0, x0, y1 - y0, x1 - x0


# ---------------------------------------------------------------------------

def test_fpn_levels_of_hand_made_boxes():
    limits = (48, 96, 192, 224)
    crop = (0, 0, 224, 224)  # view pixels = crop pixels
    boxes = np.array([[0, 0, 47, 47],       # 48 x 48 -> P2
                      [0, 0, 48, 47],       # sqrt(49 * 48) = 48.5 -> P3
                      [10, 10, 105, 105],   # 96 -> P3
                      [0, 0, 96, 96],       # 97 -> P4
                      [0, 0, 223, 223],     # 224 -> P5
                      [0, 0, 47.9, 47.9]])  # truncated to 47 -> 48 -> P2
    np.testing.assert_array_equal(fpn_levels_by_size(boxes, crop, 224, limits), [0, 1, 1, 2, 3, 0])
    # A 100x100-pixel box of a 400x400 crop is 56 pixels of a 224 view (P3) and 28 of a 112
    # view (P2): the same object lands one level lower in the small view.
    box = np.array([[0, 0, 99, 99]])
    assert fpn_levels_by_size(box, (50, 50, 450, 450), 224, limits).tolist() == [1]
    assert fpn_levels_by_size(box, (50, 50, 450, 450), 112, limits).tolist() == [0]
    # Larger than every limit: no level. Non-square crops scale x and y apart.
    assert fpn_levels_by_size(np.array([[0, 0, 299, 299]]), (0, 0, 300, 300), 250,
                              limits).tolist() == [-1]
    tall = np.array([[0, 0, 99, 399]])  # 100 x 400 of a 100 x 400 crop -> 224 x 224 view
    assert fpn_levels_by_size(tall, (0, 0, 100, 400), 224, limits).tolist() == [3]


def test_box_sets_match_the_official_arithmetic():
    """Given the draws (crops, chosen proposals, jitter factors, flips, the
    pad RNG), every box set, id and level equals the official computation."""
    rng = np.random.RandomState(0)
    width, height = 300, 220
    ltwh = np.array([[10, 20, 120, 90], [150, 30, 100, 150], [40, 100, 200, 110],
                     [200, 150, 90, 60], [0, 0, 300, 220], [60, 60, 40, 40]])
    props = proposal_corners(ltwh)
    limits = (48, 96, 192, 224)
    sizes = (224, 224, 112)
    with_ids = np.concatenate([props, np.arange(1, len(props) + 1)[:, None]], axis=1)
    checked = 0
    for trial in range(30):
        crops = [(0, 0, width, height)]
        for _ in range(2):
            w, h = rng.randint(20, width + 1), rng.randint(20, height + 1)
            x0, y0 = rng.randint(0, width - w + 1), rng.randint(0, height - h + 1)
            crops.append((x0, y0, x0 + w, y0 + h))
        flips = rng.rand(3) < 0.5
        # The proposals each pair may choose from: those overlapping both crops.
        _, candidates = select_views(lambda: crops, props, 100, 0, 1,
                                     lambda n, k: np.arange(k))
        for rows, crop in zip(candidates, crops[1:]):
            official = official_overlap_props(with_ids, as_params(crops[0]), as_params(crop))
            assert (rows + 1).tolist() == official[:, 4].astype(int).tolist()
        chosen = [np.sort(rng.choice(rows, min(len(rows), rng.randint(1, 5)), replace=False))
                  for rows in candidates]
        if trial == 0:  # a pair without any proposal: whole-view boxes
            chosen[1] = np.array([], dtype=int)
        jitters = [np.where(rng.rand(len(c), 1) < 0.5, rng.uniform(-0.1, 0.1, (len(c), 4)), 0)
                   for c in chosen]
        seed = 100 + trial
        ours_rs = np.random.RandomState(seed)
        view1, others = soco_box_sets(props, crops, chosen, jitters, 4,
                                      lambda n, k: ours_rs.choice(n, k))

        # Official, same draws: jitter view 1's copies, clip, pad 1_12, 1_13, 2, 3.
        rs = np.random.RandomState(seed)
        p1 = as_params(crops[0])
        sets1 = [official_clip(official_jitter(with_ids[c], j), *p1, WHOLE_VIEW_ID)
                 for c, j in zip(chosen, jitters)]
        setsk = [official_clip(with_ids[c], *as_params(crop), WHOLE_VIEW_ID)
                 for c, crop in zip(chosen, crops[1:])]
        common = [a[np.isin(a[:, 4], b[:, 4])][:, 4] for a, b in zip(sets1, setsk)]
        sets1 = [official_pad(s, c, 4, rs) for s, c in zip(sets1, common)]
        setsk = [official_pad(s, c, 4, rs) for s, c in zip(setsk, common)]

        for (ours, ids), official, view in [(v, o, 0) for v, o in zip(view1, sets1)] + \
                [(v, o, k + 1) for k, (v, o) in enumerate(zip(others, setsk))]:
            top, left, h, w = as_params(crops[view])
            np.testing.assert_array_equal(ours, official[:, :4])
            np.testing.assert_array_equal(ids, official[:, 4])
            np.testing.assert_array_equal(
                fpn_levels_by_size(ours, crops[view], sizes[view], limits),
                official_levels(official, h, w, sizes[view], limits))
            fractions = boxes_as_crop_fractions(ours, crops[view]).astype(np.float32)
            if flips[view]:
                fractions = flip_crop_fractions(fractions)
            np.testing.assert_array_equal(fractions, official_tensor(official, h, w, flips[view]))
            checked += 1
        if trial == 0:
            assert (others[1][1] == WHOLE_VIEW_ID).all() and (view1[1][1] == WHOLE_VIEW_ID).all()
    assert checked == 30 * 4


def test_whole_view_box_gets_an_id_no_proposal_has():
    props = proposal_corners(np.array([[0, 0, 40, 40], [200, 150, 60, 50]]))
    crops = [(0, 0, 260, 200), (100, 0, 180, 100)]  # proposal 1 and 2 both miss view 2
    view1, others = soco_box_sets(props, crops, [np.array([], dtype=int)], [np.zeros((0, 4))], 4,
                                  lambda n, k: np.zeros(k, dtype=int))
    assert view1[0][1].tolist() == [WHOLE_VIEW_ID] * 4 and others[0][1].tolist() == [0] * 4
    assert WHOLE_VIEW_ID not in (1, 2)  # official: 1, the id of proposal 1 (B6)
    np.testing.assert_array_equal(others[0][0][0], [0, 0, 79, 99])


def test_retry_law_halves_the_required_shared_proposals():
    props = proposal_corners(np.array([[0, 0, 50, 50], [10, 10, 50, 50], [200, 200, 40, 40]]))
    whole = (0, 0, 300, 300)
    far = (150, 150, 260, 260)   # shares only proposal 3 with view 1
    near = (0, 0, 100, 100)      # shares proposals 1 and 2
    draws = iter([[whole, far, near], [whole, near, near], [whole, far, far]])
    calls = []

    def draw():
        calls.append(1)
        return next(draws)

    # least_common 2: draw 1 fails (view 2 shares one proposal); draw 2 succeeds.
    crops, chosen = select_views(draw, props, 4, 2, 5, lambda n, k: np.arange(k))
    assert crops == [whole, near, near] and len(calls) == 2
    assert [c.tolist() for c in chosen] == [[0, 1], [0, 1]]
    # After one failure the requirement is 1: the next draw with one shared box is taken.
    draws = iter([[whole, far, (290, 290, 300, 300)], [whole, far, far]])
    calls.clear()
    crops, chosen = select_views(draw, props, 4, 2, 5, lambda n, k: np.arange(k))
    assert len(calls) == 2 and [c.tolist() for c in chosen] == [[2], [2]]
    # After max_tries the last draw is used as it is, even without shared proposals.
    draws = iter([[whole, (290, 0, 300, 10), far]] * 3)
    calls.clear()
    crops, chosen = select_views(draw, props, 4, 2, 3, lambda n, k: np.arange(k))
    assert len(calls) == 3 and chosen[0].tolist() == [] and chosen[1].tolist() == [2]
    # More overlapping proposals than select_k: a random choice of select_k.
    crops, chosen = select_views(lambda: [whole, whole, whole], props, 2, 2, 5,
                                 lambda n, k: np.array([2, 0]))
    assert [c.tolist() for c in chosen] == [[2, 0], [2, 0]]


def ramp_image(width=256, height=200):
    ys, xs = np.mgrid[0:height, 0:width]
    return np.stack([xs, ys, np.full_like(xs, 77)], axis=-1).astype(np.uint8)


@pytest.mark.parametrize('star', [False, True])
def test_views_and_boxes_show_the_same_image_content(star):
    """Brute force through the real image operations: on an image whose red
    and green channels are its pixel coordinates, the view pixel at a box's
    left (right) edge must read the source x of the proposal's left (right)
    edge, clipped to the crop, with each view's own flip."""
    img = ramp_image()
    ltwh = np.array([[20, 30, 120, 100], [110, 40, 130, 140], [60, 90, 90, 100],
                     [5, 5, 240, 180]])
    props = proposal_corners(ltwh)
    views_cfg = dict(type='SoCoViews', view_sizes=(224, 224, 192 if star else 112),
                     downscaled_view_size=112 if star else None, jitter_prob=0.0)
    transform = TRANSFORMS.build(views_cfg)
    torch.manual_seed(1)
    np.random.seed(1)
    flips_seen, checked, own_flips = set(), 0, 0
    for _ in range(12):
        out = transform(dict(img=img.copy(), proposals=props.copy()))
        own_flips += len(set(out['flips'])) > 1  # each view draws its own flip
        n_views = 4 if star else 3
        assert len(out['img']) == n_views and len(out['flips']) == n_views
        for k in range(2, n_views + 1):
            for name, view in ((f'regions_1_{k}', 0), (f'regions_{k}', k - 1)):
                region = out[name]
                assert region['boxes'].dtype == np.float32 and region['boxes'].shape == (4, 4)
                pixels = out['img'][view]
                size = pixels.shape[0]
                assert size == out['view_sizes'][view]
                x0, y0, x1, y1 = out['crop_boxes'][view]
                flip = out['flips'][view]
                flips_seen.add(flip)
                scale = (x1 - x0) / size
                for (fx1, fy1, fx2, fy2), box_id in zip(region['boxes'], region['ids']):
                    if box_id == WHOLE_VIEW_ID:
                        continue
                    src = props[box_id - 1]
                    left = max(src[0], x0)
                    right = min(src[2], x1 - 1)
                    top = max(src[1], y0)
                    row = min(int((fy1 + fy2) / 2 * size), size - 1)
                    col_l = min(int(fx1 * size), size - 1)
                    col_r = min(int(fx2 * size), size - 1)
                    at_left, at_right = float(pixels[row, col_l, 0]), float(pixels[row, col_r, 0])
                    tol = 1.5 * scale + 1.5
                    assert abs(at_left - (right if flip else left)) <= tol, (name, box_id)
                    assert abs(at_right - (left if flip else right)) <= tol + scale, (name, box_id)
                    col = min(int((fx1 + fx2) / 2 * size), size - 1)
                    top_row = min(int(fy1 * size), size - 1)
                    assert abs(float(pixels[top_row, col, 1]) - top) <= tol
                    checked += 1
    assert checked > 100 and flips_seen == {True, False} and own_flips > 0


def test_star_view4_is_view2_downscaled_with_its_boxes():
    img = ramp_image()
    props = proposal_corners(np.array([[20, 30, 120, 100], [110, 40, 130, 140]]))
    transform = TRANSFORMS.build(dict(type='SoCoViews', view_sizes=(224, 224, 192),
                                      downscaled_view_size=112))
    torch.manual_seed(5)
    np.random.seed(5)
    out = transform(dict(img=img, proposals=props))
    assert [v.shape[0] for v in out['img']] == [224, 224, 192, 112]
    np.testing.assert_array_equal(out['crop_boxes'][3], out['crop_boxes'][1])
    np.testing.assert_array_equal(out['regions_4']['ids'], out['regions_2']['ids'])
    np.testing.assert_array_equal(out['regions_1_4']['boxes'], out['regions_1_2']['boxes'])
    same_flip = out['flips'][3] == out['flips'][1]
    expected = out['regions_2']['boxes'] if same_flip else \
        flip_crop_fractions(out['regions_2']['boxes'])
    np.testing.assert_array_equal(out['regions_4']['boxes'], expected)
    # view 4's levels are computed at 112 pixels: never above view 2's.
    assert (out['regions_4']['levels'] <= out['regions_2']['levels']).all()


def test_cutout_fills_squares_inside_the_boxes():
    views = [np.full((64, 64, 3), 200, np.uint8) for _ in range(3)]
    box = np.array([[0.1, 0.1, 0.4, 0.5]], dtype=np.float32)  # 6.4-25.6 x 6.4-32 pixels
    cutout = TRANSFORMS.build(dict(type='CutoutInBoxes', views=[1], prob=1.0,
                                   area_ratio=(0.2, 0.2)))
    half = int(round(math.sqrt(0.2 * (0.3 * 64 + 1) * (0.4 * 64 + 1)))) // 2  # side 10 -> 5
    for seed in range(5):
        random.seed(seed)
        out = cutout(dict(img=list(views), regions_2=dict(boxes=box), regions_3=dict(boxes=box)))
        assert (out['img'][0] == 200).all() and (out['img'][2] == 200).all()  # views 1, 3
        filled = (out['img'][1] == [124, 116, 104]).all(-1)
        ys, xs = np.nonzero(filled)
        # One square of side 2 * half + 1 centred on a pixel of the box.
        assert filled.sum() == (2 * half + 1) ** 2
        assert xs.max() - xs.min() == ys.max() - ys.min() == 2 * half
        cx, cy = (xs.min() + xs.max()) // 2, (ys.min() + ys.max()) // 2
        assert 6 <= cx <= 25 and 6 <= cy <= 32
        assert (out['img'][1][~filled] == 200).all()


def test_view_color_augment_ops_and_views():
    views = [np.full((8, 8, 3), v, np.uint8) for v in (200, 200, 130)]
    solarize = TRANSFORMS.build(dict(type='ViewColorAugment', ops=('solarize',),
                                     solarize_prob=1.0, views=[1, 2]))
    out = solarize(dict(img=list(views)))['img']
    assert (out[0] == 200).all() and (out[1] == 55).all() and (out[2] == 125).all()
    with pytest.raises(ValueError, match='unknown ops'):
        TRANSFORMS.build(dict(type='ViewColorAugment', ops=('sharpen',)))


def write_records(photo_dir, proposals_root, boxes=((4, 4, 40, 30), (20, 10, 60, 60))):
    from PIL import Image
    paths = []
    for folder, _, files in os.walk(photo_dir):
        for name in files:
            path = osp.join(folder, name)
            with Image.open(path) as img:
                size = img.size
            write_proposal_record(proposal_record_path(proposals_root, photo_dir, path), size,
                                  np.array(boxes))
            paths.append(path)
    return paths


def test_proposals_folder_pairs_images_with_records(photo_dir, tmp_path):
    root = str(tmp_path / 'proposals')
    paths = write_records(photo_dir, root)
    dataset = ProposalsFolder(data_root=photo_dir, proposals_root=root,
                              pipeline=[dict(type='LoadImageRGB'), dict(type='LoadProposals')])
    assert len(dataset) == len(paths)
    item = dataset[0]
    np.testing.assert_array_equal(item['proposals'], [[4, 4, 43, 33], [20, 10, 79, 69]])

    # A missing record stops the scan and names the image.
    victim = sorted(paths)[-1]
    os.remove(proposal_record_path(root, photo_dir, victim))
    missing = f'1 of {len(paths)} images.*{osp.basename(victim)}'
    with pytest.raises(FileNotFoundError, match=missing):
        ProposalsFolder(data_root=photo_dir, proposals_root=root)
    with pytest.raises(FileNotFoundError, match='proposals_root'):
        ProposalsFolder(data_root=photo_dir, proposals_root=str(tmp_path / 'nowhere'))

    # A record of another size is refused, naming both files.
    record = proposal_record_path(root, photo_dir, sorted(paths)[0])
    with open(record) as f:
        data = json.load(f)
    data['size'] = [data['size'][0] + 1, data['size'][1]]
    with open(record, 'w') as f:
        json.dump(data, f)
    load = Compose([TRANSFORMS.build(dict(type='LoadImageRGB')),
                    TRANSFORMS.build(dict(type='LoadProposals'))])
    with pytest.raises(ProposalRecordError, match='field "size".*decodes to'):
        load(dict(img_path=sorted(paths)[0], proposals_path=record))
