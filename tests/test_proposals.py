"""SoCo's proposals: selective search against a re-derivation of the official
algorithm, the official filters on hand-made boxes, and
tools/misc/generate_proposals.py end to end (broken files, rerun, SIGKILL)."""
import os
import os.path as osp
import re
import signal
import subprocess
import sys
import time
from math import sqrt

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, skimage_photo

TOOL = osp.join(REPO, 'tools', 'misc', 'generate_proposals.py')


def small_photo(name, side):
    """A real photo shrunk so that its longer side is ``side`` pixels."""
    with Image.open(skimage_photo(name)) as img:
        img = img.convert('RGB')
        img.thumbnail((side, side), Image.BILINEAR)
        return np.asarray(img)


# --- The official selective search, re-derived from its definitions -----------------
# github hologerry/SoCo selective_search/selective_search.py, written plainly
# (per-pixel scan, per-region masks, a dict of pair similarities, a full sort per
# merge). Nothing of crosscl_mm is used.

def reference_selective_search(img, scale, sigma, min_size):
    from skimage.color import rgb2hsv
    from skimage.feature import local_binary_pattern
    from skimage.segmentation import felzenszwalb
    from skimage.util import img_as_float

    label = felzenszwalb(img_as_float(img), scale=scale, sigma=sigma, min_size=min_size)
    height, width = label.shape
    image_area = height * width
    rgb = img.astype(np.float64)  # the official 4-channel float image
    hsv = rgb2hsv(rgb)
    lbp = np.stack([local_binary_pattern(rgb[:, :, c], 8, 1.0) for c in range(3)], axis=2)

    regions = {}  # label -> region, in the order the raster scan meets them (:156-174)
    for y in range(height):
        for x in range(width):
            r = regions.setdefault(label[y, x], dict(x0=x, y0=y, x1=x, y1=y))
            r['x0'], r['y0'] = min(r['x0'], x), min(r['y0'], y)
            r['x1'], r['y1'] = max(r['x1'], x), max(r['y1'], y)
    for key, r in regions.items():
        mask = label == key
        r['size'] = int(mask.sum())
        # 25 bins of H, S, V on (0, 255), 10 bins of each channel's LBP on (0, 255),
        # each divided by the pixel count (:84-99, :128-145)
        r['colour'] = np.concatenate(
            [np.histogram(hsv[mask][:, c], 25, (0.0, 255.0))[0] for c in range(3)]) / r['size']
        r['texture'] = np.concatenate(
            [np.histogram(lbp[mask][:, c], 10, (0.0, 255.0))[0] for c in range(3)]) / r['size']

    def similarity(a, b):
        colour = sum(min(p, q) for p, q in zip(a['colour'], b['colour']))
        texture = sum(min(p, q) for p, q in zip(a['texture'], b['texture']))
        size = 1.0 - (a['size'] + b['size']) / image_area
        box = ((max(a['x1'], b['x1']) - min(a['x0'], b['x0']))
               * (max(a['y1'], b['y1']) - min(a['y0'], b['y0'])))
        fill = 1.0 - (box - a['size'] - b['size']) / image_area
        return colour + texture + size + fill

    def corner_inside(a, b):  # a corner of b strictly inside a (:195-205)
        def inside(x, y):
            return a['x0'] < x < a['x1'] and a['y0'] < y < a['y1']
        return (inside(b['x0'], b['y0']) or inside(b['x1'], b['y1'])
                or inside(b['x0'], b['y1']) or inside(b['x1'], b['y0']))

    keys = list(regions)
    pairs = {}  # (a, b) -> similarity; dicts keep insertion order
    for m, a in enumerate(keys):
        for b in keys[m + 1:]:
            if corner_inside(regions[a], regions[b]):
                pairs[(a, b)] = similarity(regions[a], regions[b])

    next_key = max(keys) + 1
    while pairs:
        best = max(pairs.values())
        i, j = [k for k, v in pairs.items() if v == best][-1]  # last of the maxima
        a, b = regions[i], regions[j]
        t = next_key
        next_key += 1
        size = a['size'] + b['size']
        regions[t] = dict(
            x0=min(a['x0'], b['x0']), y0=min(a['y0'], b['y0']),
            x1=max(a['x1'], b['x1']), y1=max(a['y1'], b['y1']), size=size,
            colour=(a['colour'] * a['size'] + b['colour'] * b['size']) / size,
            texture=(a['texture'] * a['size'] + b['texture'] * b['size']) / size)
        touched = [k for k in pairs if i in k or j in k]
        for k in touched:
            del pairs[k]
        for k in touched:
            if k != (i, j):
                other = k[1] if k[0] in (i, j) else k[0]
                pairs[(t, other)] = similarity(regions[t], regions[other])
    return np.array([[r['x0'], r['y0'], r['x1'] - r['x0'], r['y1'] - r['y0']]
                     for r in regions.values()], dtype=np.int64)


# The official code runs LBP on float images; scikit-image warns about that.
@pytest.mark.filterwarnings('ignore:Applying `local_binary_pattern`')
@pytest.mark.parametrize('name,side,params', [
    ('astronaut.png', 96, (300, 0.9, 100)),  # SoCo's parameters
    ('coffee.png', 112, (30, 0.8, 20)),  # finer segments: ~200 regions, many merges
])
def test_selective_search_equals_official_definition(name, side, params):
    from crosscl_mm.datasets.proposals import selective_search
    img = small_photo(name, side)
    expected = reference_selective_search(img, *params)
    boxes = selective_search(img, *params)
    assert len(expected) > 10
    np.testing.assert_array_equal(boxes, expected)


@pytest.mark.filterwarnings('ignore:Applying `local_binary_pattern`')
def test_initial_regions_in_raster_order():
    """Regions come in the order a raster scan meets them, whatever their
    labels, with exact boxes, sizes and histograms."""
    from skimage.color import rgb2hsv
    from skimage.feature import local_binary_pattern
    from crosscl_mm.datasets.proposals.selective_search import initial_regions
    labels = np.array([[2, 2, 0, 0],
                       [2, 1, 1, 0],
                       [3, 3, 1, 0]])
    img = np.random.default_rng(0).integers(0, 256, (3, 4, 3), dtype=np.uint8)
    regions = initial_regions(img, labels)
    order = [2, 0, 1, 3]
    np.testing.assert_array_equal(regions.boxes, [[0, 0, 1, 1], [2, 0, 3, 2], [1, 1, 2, 2],
                                                  [0, 2, 1, 2]])
    np.testing.assert_array_equal(regions.sizes, [3, 4, 3, 2])
    hsv = rgb2hsv(img.astype(np.float64))
    lbp = np.stack([local_binary_pattern(img[:, :, c].astype(np.float64), 8, 1.0)
                    for c in range(3)], 2)
    for k, label in enumerate(order):
        mask = labels == label
        colour = np.concatenate([np.histogram(hsv[mask][:, c], 25, (0, 255))[0] for c in range(3)])
        texture = np.concatenate([np.histogram(lbp[mask][:, c], 10, (0, 255))[0]
                                  for c in range(3)])
        np.testing.assert_array_equal(regions.colour[k], colour / mask.sum())
        np.testing.assert_array_equal(regions.texture[k], texture / mask.sum())


def test_selective_search_defaults_are_socos():
    from crosscl_mm.datasets.proposals import selective_search
    img = small_photo('chelsea.png', 64)
    np.testing.assert_array_equal(selective_search(img),
                                  selective_search(img, scale=300, sigma=0.9, min_size=100))
    with pytest.raises(ValueError, match='uint8 RGB'):
        selective_search(img.astype(np.float32))


# --- Filters (selective_search/filters.py, filter_ss_proposals_json_post_no_prop.py) -----

def test_filter_ratio_size_boundaries():
    from crosscl_mm.datasets.proposals import filter_ratio_size
    # On a 200x200 image sqrt(w h) / 200 must lie in [0.3, 0.8] and w / h in [1/3, 3].
    boxes = np.array([
        [0, 0, 60, 60],    # 0.3 exactly: kept
        [1, 2, 59, 60],    # 0.2975: too small
        [3, 4, 160, 160],  # 0.8 exactly: kept
        [0, 0, 161, 160],  # 0.8025: too large
        [5, 6, 40, 120],   # w/h = 1/3 exactly, 0.35: kept
        [0, 0, 39, 120],   # w/h = 0.325
        [7, 8, 120, 40],   # w/h = 3 exactly: kept
        [0, 0, 121, 40],   # w/h = 3.025
        [0, 0, 31, 120],   # w < 32
        [0, 0, 60, 60],    # a duplicate stays
    ])
    np.testing.assert_array_equal(
        filter_ratio_size(boxes, (200, 200), 3, 0.3, 0.8),
        [[0, 0, 60, 60], [3, 4, 160, 160], [5, 6, 40, 120], [7, 8, 120, 40], [0, 0, 60, 60]])
    # The image size is (W, H): on 400x100 the reference is sqrt(40000) = 200 as well.
    np.testing.assert_array_equal(filter_ratio_size(boxes[:2], (400, 100), 3, 0.3, 0.8),
                                  [[0, 0, 60, 60]])


def test_soco_filter_fallbacks():
    from crosscl_mm.datasets.proposals import filter_soco_proposals
    size = (1000, 1000)
    # Some boxes pass ratio3size0308: only those.
    both = np.array([[0, 0, 40, 40], [10, 10, 500, 400], [0, 0, 40, 200]])
    np.testing.assert_array_equal(filter_soco_proposals(both, size), [[10, 10, 500, 400]])
    # None passes the size test: filter_ratio(3), w, h >= 32 and 1/3 <= w/h <= 3.
    np.testing.assert_array_equal(filter_soco_proposals(both[[0, 2]], size), [[0, 0, 40, 40]])
    # None passes the ratio test either: w, h >= 32 only.
    np.testing.assert_array_equal(
        filter_soco_proposals(np.array([[0, 0, 40, 200], [0, 0, 20, 20], [1, 1, 300, 33]]), size),
        [[0, 0, 40, 200], [1, 1, 300, 33]])
    # Nothing with both sides >= 32: empty (the dataset then uses the whole image).
    for boxes in (np.array([[0, 0, 31, 500], [0, 0, 500, 31]]), np.zeros((0, 4), np.int64)):
        kept = filter_soco_proposals(boxes, size)
        assert kept.shape == (0, 4)


def test_filters_match_official_definitions_on_random_boxes():
    """The vectorised filters against the official per-box Python tests, on
    boxes dense around the boundaries."""
    from crosscl_mm.datasets.proposals import filter_ratio, filter_ratio_size
    rng = np.random.default_rng(0)
    width, height = 300, 200
    boxes = np.concatenate([rng.integers(0, 50, (4000, 2)), rng.integers(25, 260, (4000, 2))], 1)

    def official(ratio, size_range):
        kept = []
        for left, top, w, h in boxes.tolist():
            ok = w >= 32 and h >= 32 and (1.0 / ratio) <= (w / h) <= ratio
            if ok and size_range:
                ok = size_range[0] <= sqrt(w * h) / sqrt(width * height) <= size_range[1]
            if ok:
                kept.append([left, top, w, h])
        return np.array(kept, dtype=np.int64).reshape(-1, 4)

    expected = official(3.0, (0.3, 0.8))
    assert 100 < len(expected) < 3000
    np.testing.assert_array_equal(filter_ratio_size(boxes, (width, height), 3, 0.3, 0.8), expected)
    np.testing.assert_array_equal(filter_ratio(boxes, 3), official(3, None))


# --- tools/misc/generate_proposals.py ----------------------------------------------------

def photo_folder(root, names, side):
    """Real photos as JPEGs in two class folders."""
    paths = []
    for i, name in enumerate(names):
        folder = osp.join(root, f'class_{i % 2}')
        os.makedirs(folder, exist_ok=True)
        path = osp.join(folder, osp.splitext(name)[0] + '.jpg')
        Image.fromarray(small_photo(name, side)).save(path, quality=90)
        paths.append(path)
    return paths


def summary_counts(text):
    match = re.search(r'done: (\d+) computed, (\d+) skipped \(record already there\), '
                      r'(\d+) broken, (\d+) failed', text)
    assert match, text
    return tuple(int(v) for v in match.groups())


def run_tool(capsys, *args):
    sys.path.insert(0, osp.dirname(TOOL))
    try:
        import generate_proposals
    finally:
        sys.path.pop(0)
    code = generate_proposals.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_generate_proposals_tool(tmp_path, capsys):
    from crosscl_mm.datasets.proposal_records import read_proposal_record
    from crosscl_mm.datasets.proposals import soco_proposals
    data, out = tmp_path / 'data', tmp_path / 'proposals'
    photos = photo_folder(str(data), ['chelsea.png', 'coffee.png', 'rocket.jpg'], 128)
    (data / 'class_1' / 'broken.jpg').write_bytes(b'\xff\xd8\xff\xe0 not really a jpeg')
    (data / 'class_0' / 'notes.txt').write_text('not an image')

    code, stdout, stderr = run_tool(capsys, data, out, '--workers', 2)
    assert code == 0, stderr
    assert '4 images under' in stdout and '(1 other file ignored)' in stdout
    assert summary_counts(stdout) == (3, 0, 1, 0)
    assert 'broken image, no record written' in stderr and 'broken.jpg' in stderr
    assert not (out / 'class_1' / 'broken.jpg.json').exists()
    total = 0
    for path in photos:
        record = osp.join(out, osp.relpath(path, data) + '.json')
        size, boxes = read_proposal_record(record)
        img = np.asarray(Image.open(path).convert('RGB'))
        assert size == (img.shape[1], img.shape[0])
        np.testing.assert_array_equal(boxes, soco_proposals(img))
        total += len(boxes)
    assert f'mean {total / 3:.1f} boxes per image' in stdout
    assert re.search(r'\(\d+\.\d\d images/s, 2 workers\)', stdout)

    mtimes = {p: os.stat(p).st_mtime_ns for p in out.rglob('*.json')}
    code, stdout, _ = run_tool(capsys, data, out, '--workers', 2)
    assert code == 0
    assert summary_counts(stdout) == (0, 3, 1, 0)  # the broken file is retried, no rewrite
    assert {p: os.stat(p).st_mtime_ns for p in out.rglob('*.json')} == mtimes

    # A record damaged from outside: found and recomputed with --verify only.
    damaged = osp.join(out, osp.relpath(photos[1], data) + '.json')
    with open(damaged, 'w') as f:
        f.write('{"size": [1, 1], "boxes": [[0, 0, 5, 5]]}')
    code, stdout, _ = run_tool(capsys, data, out, '--workers', 1)
    assert summary_counts(stdout) == (0, 3, 1, 0)
    code, stdout, stderr = run_tool(capsys, data, out, '--workers', 1, '--verify')
    assert code == 0 and summary_counts(stdout) == (1, 2, 1, 0)
    assert f'recomputing {damaged}: ' in stderr and '1 unreadable records recomputed' in stdout
    assert read_proposal_record(damaged)[0] == Image.open(photos[1]).size


def test_generate_proposals_errors(tmp_path, capsys):
    code, _, stderr = run_tool(capsys, tmp_path / 'missing', tmp_path / 'out')
    assert code == 2 and 'DATA_ROOT=' in stderr and 'is not a folder' in stderr
    (tmp_path / 'empty').mkdir()
    code, _, stderr = run_tool(capsys, tmp_path / 'empty', tmp_path / 'out')
    assert code == 2 and 'no images' in stderr


def test_generate_proposals_resumes_after_sigkill(tmp_path, capsys):
    data, out = tmp_path / 'data', tmp_path / 'proposals'
    photo_folder(str(data), ['astronaut.png', 'chelsea.png', 'coffee.png', 'rocket.jpg'], 192)
    proc = subprocess.Popen([sys.executable, TOOL, str(data), str(out), '--workers', '1'],
                            cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not list(out.rglob('*.json')):
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, 'no record after 120 s'
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)  # the tool only: its worker must follow
        proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        while True:  # every process of the run's session is gone
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            assert time.monotonic() < deadline, 'a worker outlived the killed tool'
            time.sleep(0.05)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.stdout.close()

    done = {p: os.stat(p).st_mtime_ns for p in out.rglob('*.json')}
    assert 1 <= len(done) < 4, 'the kill came too late to test a resume'
    # What a kill during a write leaves: save_atomically's temporary file.
    stale = out / 'class_1' / '.rocket.jpg.json.k1ll3d.partial'
    stale.parent.mkdir(exist_ok=True)
    stale.write_text('{"size": [19')
    code, stdout, stderr = run_tool(capsys, data, out, '--workers', 1)
    assert code == 0
    assert 'removed 1 partial records left by an interrupted run' in stderr
    assert summary_counts(stdout) == (4 - len(done), len(done), 0, 0)
    assert {p: os.stat(p).st_mtime_ns for p in done} == done
    assert len(list(out.rglob('*.json'))) == 4
    assert not list(out.rglob('*.partial')), 'a partial file survived the rerun'


def test_generate_proposals_reports_a_dead_worker(tmp_path, capsys):
    """A worker killed from outside (the OOM killer) ends the run with an
    error naming the images in flight, instead of a hang."""
    import multiprocessing
    import threading
    data, out = tmp_path / 'data', tmp_path / 'proposals'
    photo_folder(str(data), ['astronaut.png', 'chelsea.png', 'coffee.png'], 192)
    killed = []
    # Only the tool's workers: earlier tests may leave processes of their own
    # (a DataLoader's persistent workers), whose death torch reports as an error.
    earlier = {child.pid for child in multiprocessing.active_children()}

    def kill_worker_after_first_record():
        deadline = time.monotonic() + 60
        while not list(out.rglob('*.json')) and time.monotonic() < deadline:
            time.sleep(0.005)
        for child in multiprocessing.active_children():
            if child.pid not in earlier:
                os.kill(child.pid, signal.SIGKILL)
                killed.append(child.pid)

    killer = threading.Thread(target=kill_worker_after_first_record)
    killer.start()
    code, stdout, stderr = run_tool(capsys, data, out, '--workers', 1)
    killer.join()
    assert killed
    assert code == 1, stdout + stderr
    assert 'error: a worker process died' in stderr
    assert re.search(r'while computing one of: \S+(chelsea|coffee)\.jpg', stderr), stderr
    assert 'done:' not in stdout
