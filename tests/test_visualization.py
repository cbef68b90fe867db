"""The analysis tools show what CrossCL computes: the region visualisation
draws exactly the pipeline's boxes; the similarity maps, training curves and
TensorBoard events of a real short pretraining hold the model's and the
logger's own values."""
import json
import os
import os.path as osp
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, TEST_CONFIGS, python_cmd, run, skimage_photo
from crosscl_mm.utils.work_dir import read_scalars

sys.path.insert(0, osp.join(REPO, 'tools', 'analysis_tools'))
import plot_training_curves  # noqa: E402
import visualize_regions  # noqa: E402
import visualize_similarity  # noqa: E402

LEAF_CONFIG = osp.join(REPO, 'configs', 'crosscl_r50fpn_200e_in1k.py')


def test_drawn_windows_match_the_data_sample():
    import torch
    from crosscl_mm.datasets.transforms.loading import decode_rgb
    torch.manual_seed(3)
    pipeline = visualize_regions.pipeline_without_packing(
        osp.join(REPO, 'configs/crosscl_r50fpn_200e_in1k.py'))
    path = skimage_photo('chelsea.png')
    results = pipeline(dict(img_path=path))
    results['ori_img'] = decode_rgb(path)
    canvas, layout = visualize_regions.render(results, 'p4')
    pixels = np.asarray(canvas)
    regions = results['regions_p4']
    assert regions['valid'].any()
    hits = total = 0
    for q, k, ok in zip(regions['query_boxes'], regions['key_boxes'], regions['valid']):
        colour = visualize_regions.VALID if ok else visualize_regions.INVALID
        corners = [(layout['query_left'] + q[0], q[1])]
        if ok:
            corners.append((layout['key_left'] + k[0], k[1]))
        for x, y in corners:
            total += 1
            hits += tuple(pixels[int(round(y)), int(round(x))]) == colour
    assert hits >= 0.9 * total, (hits, total)
    # The query crop's corner is drawn in red on the original image.
    crop = np.array(results['crop_boxes'][0])
    if results['flip']:
        crop[[0, 2]] = results['ori_img'].shape[1] - crop[[2, 0]]
    x0, y0 = crop[:2] * layout['scale']
    assert tuple(pixels[int(y0) + 1, int(x0) + 1]) == visualize_regions.QUERY_CROP or \
        tuple(pixels[int(y0), int(x0)]) == visualize_regions.QUERY_CROP


def test_cli_writes_pngs(tmp_path):
    out = tmp_path / 'viz'
    proc = run(python_cmd('tools/analysis_tools/visualize_regions.py', skimage_photo('astronaut.png'),
                          '--config', 'configs/crosscl_r50fpn_200e_in1k.py', '--out', str(out),
                          '--samples', '2'))
    files = sorted(out.glob('*.png'))
    assert [f.name for f in files] == ['astronaut_0.png', 'astronaut_1.png']
    img = Image.open(files[0])
    assert img.height == 224 and img.width > 2 * 224
    assert 'windows valid' in proc.stdout


# --- What a pretraining run shows: TensorBoard, training curves, similarity maps ----------


def with_tensorboard_switch(folder):
    """tests/configs/crosscl_r18_tiny.py over its leaf config with the switch
    flipped: '_base_/tensorboard.py' in place of '_base_/default_runtime.py',
    the one-line edit a user makes. Written to ``folder`` with absolute bases."""
    leaf = open(LEAF_CONFIG).read()
    assert "'_base_/default_runtime.py'" in leaf
    leaf = leaf.replace("'_base_/default_runtime.py'", "'_base_/tensorboard.py'")
    leaf = leaf.replace("'_base_/", f"'{REPO}/configs/_base_/")
    leaf_path = osp.join(folder, 'crosscl_r50fpn_200e_in1k_tensorboard.py')
    with open(leaf_path, 'w') as f:
        f.write(leaf)
    tiny = open(osp.join(TEST_CONFIGS, 'crosscl_r18_tiny.py')).read()
    assert "'../../configs/crosscl_r50fpn_200e_in1k.py'" in tiny
    tiny_path = osp.join(folder, 'crosscl_r18_tiny_tensorboard.py')
    with open(tiny_path, 'w') as f:
        f.write(tiny.replace("'../../configs/crosscl_r50fpn_200e_in1k.py'", repr(leaf_path)))
    return tiny_path


@pytest.fixture(scope='module')
def trained_work_dir(photo_dir, module_tmp_path):
    """A real 4-iteration pretraining (ResNet-18, 64 px, 8 photos) through
    tools/train.py, with the TensorBoard switch on."""
    work_dir = str(module_tmp_path / 'work_dir')
    run(python_cmd('tools/train.py', with_tensorboard_switch(str(module_tmp_path)),
                   '--work-dir', work_dir,
                   '--cfg-options', f'train_dataloader.dataset.data_root={photo_dir}'))
    assert osp.exists(osp.join(work_dir, 'epoch_1.pth'))
    return work_dir


def test_tensorboard_switch_changes_only_the_visualizer(tmp_path):
    from mmengine.config import Config
    plain = Config.fromfile(LEAF_CONFIG).to_dict()
    switched = Config.fromfile(osp.join(osp.dirname(with_tensorboard_switch(str(tmp_path))),
                                        'crosscl_r50fpn_200e_in1k_tensorboard.py')).to_dict()
    assert {k for k in plain.keys() | switched.keys() if plain.get(k) != switched.get(k)} == \
        {'vis_backends', 'visualizer'}
    assert [b['type'] for b in switched['visualizer']['vis_backends']] == \
        ['LocalVisBackend', 'TensorboardVisBackend']
    # A config inheriting a leaf config sets the backends itself, as the README says.
    child = tmp_path / 'child.py'
    child.write_text(f"_base_ = {LEAF_CONFIG!r}\nvisualizer = dict(vis_backends=["
                     "dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')])\n")
    assert Config.fromfile(str(child)).visualizer == switched['visualizer']


def test_tensorboard_events_hold_the_logged_losses(trained_work_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = [osp.join(root, f) for root, _, files in os.walk(trained_work_dir)
              for f in files if f.startswith('events.out.tfevents')]
    assert len(events) == 1, events
    accumulator = EventAccumulator(events[0])
    accumulator.Reload()
    logged = [r for r in read_scalars(trained_work_dir) if 'loss_global' in r]
    assert len(logged) == 4
    for key in ('loss', 'loss_global', 'loss_p3_p4'):
        scalars = accumulator.Scalars(key)
        assert [s.step for s in scalars] == [r['step'] for r in logged]
        np.testing.assert_allclose([s.value for s in scalars], [r[key] for r in logged],
                                   rtol=1e-6)  # TensorBoard stores float32


def test_training_curves_are_the_logged_values(trained_work_dir, tmp_path, capsys):
    curves = plot_training_curves.training_curves(trained_work_dir)
    assert list(curves) == list(plot_training_curves.LOSS_KEYS + plot_training_curves.ACC_KEYS)
    records = [json.loads(line) for path in sorted(
        os.path.join(root, f) for root, _, files in os.walk(trained_work_dir)
        for f in files if f == 'scalars.json') for line in open(path) if line.strip()]
    for key, (steps, values) in curves.items():
        assert steps == [r['step'] for r in records if key in r] == [1, 2, 3, 4]
        assert values == [r[key] for r in records if key in r]
    out = tmp_path / 'curves' / 'curves.png'
    plot_training_curves.main([trained_work_dir, '--out', str(out)])
    assert Image.open(out).size == (1200, 450)
    assert str(out) in capsys.readouterr().out


def test_training_curves_refuse_a_dir_without_them(tmp_path, capsys):
    for content in (None, json.dumps(dict(lr=0.1, step=1))):
        work_dir = tmp_path / ('empty' if content is None else 'no_losses')
        if content is not None:
            (work_dir / '20260101_000000' / 'vis_data').mkdir(parents=True)
            (work_dir / '20260101_000000' / 'vis_data' / 'scalars.json').write_text(content + '\n')
        with pytest.raises(SystemExit) as exit_info:
            plot_training_curves.main([str(work_dir), '--out', str(tmp_path / 'x.png')])
        assert exit_info.value.code == 2
        assert str(work_dir) in capsys.readouterr().err
    assert not (tmp_path / 'x.png').exists()


@pytest.fixture(scope='module')
def similarity(trained_work_dir):
    return visualize_similarity.compute(osp.join(trained_work_dir, 'epoch_1.pth'),
                                        skimage_photo('chelsea.png'), queries=3)


def test_similarity_maps_match_an_independent_computation(similarity):
    import torch
    import torch.nn.functional as F
    from crosscl_mm.models.utils import prroi_pool_1x1
    regions = similarity['results']['regions_p4']
    assert len(similarity['chosen']) == 3 and regions['valid'][similarity['chosen']].all()
    checked = 0
    for name in ('trained', 'initial'):
        sim = similarity[name]
        for level in ('p4', 'p3'):
            maps, stride = sim.maps[level], similarity['strides'][level]
            key_map = sim.key_maps[level][0]
            assert maps.shape == (3, *key_map.shape[1:])
            assert maps.min() >= -1 - 1e-6 and maps.max() <= 1 + 1e-6
            for i, (q_box, k_box) in enumerate(zip(similarity['query_boxes'],
                                                   similarity['key_boxes'])):
                query = prroi_pool_1x1(sim.query_maps['p4'], torch.tensor(q_box)[None, None],
                                       1 / 16)[0, 0]
                # The key location nearest the mapped box's centre (feature
                # (y, x) sits at pixel (x, y) * stride for the pooling).
                x = min(int(round((k_box[0] + k_box[2]) / 2 / stride)), key_map.shape[2] - 1)
                y = min(int(round((k_box[1] + k_box[3]) / 2 / stride)), key_map.shape[1] - 1)
                expected = F.cosine_similarity(query, key_map[:, y, x], dim=0)
                assert abs(float(maps[i, y, x]) - float(expected)) < 1e-5
                positive = prroi_pool_1x1(sim.key_maps[level], torch.tensor(k_box)[None, None],
                                          1 / stride)[0, 0]
                assert abs(float(sim.at_box[level][i])
                           - float(F.cosine_similarity(query, positive, dim=0))) < 1e-5
                checked += 1
    assert checked == 12
    assert not torch.allclose(similarity['trained'].maps['p4'], similarity['initial'].maps['p4'])


def test_similarity_uses_the_checkpoint_and_the_runs_own_initialisation(trained_work_dir,
                                                                       similarity, tmp_path):
    """The 'checkpoint' maps come from the saved weights, the 'random init'
    maps from the weights the Runner started that training with."""
    import torch
    from mmengine.config import Config
    from mmengine.runner import Runner
    from crosscl_mm.converters import load_checkpoint_safely
    from crosscl_mm.registry import MODELS
    ckpt = load_checkpoint_safely(osp.join(trained_work_dir, 'epoch_1.pth'))
    cfg = Config.fromstring(ckpt['meta']['cfg'], file_format='.py')
    views = similarity['results']['img']
    mean = torch.tensor(cfg.model.data_preprocessor.mean).view(1, 3, 1, 1)
    std = torch.tensor(cfg.model.data_preprocessor.std).view(1, 3, 1, 1)
    key_img = (torch.from_numpy(np.array(views[1])).permute(2, 0, 1)[None].float() - mean) / std

    trained = MODELS.build(cfg.model)
    trained.load_state_dict(ckpt['state_dict'], strict=True)
    # A Runner that trains zero epochs leaves the model as initialised.
    cfg.work_dir = str(tmp_path)
    cfg.randomness = dict(seed=ckpt['meta']['seed'])
    cfg.train_cfg.max_epochs = 0
    runner = Runner.from_cfg(cfg)
    runner.train()
    for model, name in ((trained, 'trained'), (runner.model, 'initial')):
        with torch.no_grad():
            p3, p4 = model.eval().fpn(model.backbone(key_img))
        torch.testing.assert_close(similarity[name].key_maps['p4'], p4, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(similarity[name].key_maps['p3'], p3, rtol=1e-5, atol=1e-5)


def test_similarity_png_draws_the_boxes_where_they_are(similarity, tmp_path):
    found = similarity
    fig, layout = visualize_similarity.render(
        found['results']['img'], found['query_boxes'], found['key_boxes'], found['trained'],
        found['initial'], found['strides'])
    path = tmp_path / 'grid.png'
    fig.savefig(path, dpi=visualize_similarity.DPI)
    pixels = np.asarray(Image.open(path).convert('RGB'))
    assert pixels.shape[1::-1] == visualize_similarity.figure_size_px(3)
    size = found['results']['view_size']
    for row, (q_box, k_box) in enumerate(zip(found['query_boxes'], found['key_boxes'])):
        for col, box, colour in ((0, q_box, visualize_similarity.QUERY_BOX),
                                 (1, k_box, visualize_similarity.KEY_BOX)):
            left, top, right, bottom = layout[row][col]
            x0, y0, x1, y1 = (int(round(c)) for c in box)
            for x, y in ((x0, y0), (x1 - 1, y0), (x0, y1 - 1), (x1 - 1, y1 - 1)):
                px = left + (x + 0.5) / size * (right - left)
                py = top + (y + 0.5) / size * (bottom - top)
                assert tuple(pixels[int(py), int(px)]) == colour, (row, col, x, y)


def test_similarity_cli_writes_the_grid(trained_work_dir, tmp_path, capsys):
    out = tmp_path / 'similarity'
    visualize_similarity.main([osp.join(trained_work_dir, 'epoch_1.pth'),
                               skimage_photo('astronaut.png'), '--out', str(out),
                               '--queries', '2'])
    png = out / 'astronaut_similarity.png'
    assert png.stat().st_size > 10_000
    assert Image.open(png).size == visualize_similarity.figure_size_px(2)
    printed = capsys.readouterr().out
    assert str(png) in printed and 'random init' in printed


def test_similarity_cli_needs_a_config_for_a_bare_state_dict(trained_work_dir, tmp_path,
                                                             capsys):
    import torch
    from crosscl_mm.converters import load_checkpoint_safely
    bare = tmp_path / 'bare.pth'
    torch.save(load_checkpoint_safely(osp.join(trained_work_dir, 'epoch_1.pth'))['state_dict'],
               bare)
    with pytest.raises(SystemExit) as exit_info:
        visualize_similarity.main([str(bare), skimage_photo('chelsea.png'),
                                   '--out', str(tmp_path / 'o')])
    assert exit_info.value.code == 2
    assert f'{bare} stores no config' in capsys.readouterr().err
