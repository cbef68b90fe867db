"""The pieces of `make demo` (tools/demo.py; the whole demo is not a test):
its configs say what the demo promises, SoCo's proposals computed on the fly
feed SoCo's dataset, every conversion lands in the fine-tuning config, and the
curve summary reads the logged values."""
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config

import crosscl_mm  # noqa: F401
from conftest import REPO, skimage_photo
from test_detco_run import flat

sys.path.insert(0, osp.join(REPO, 'tools'))
import demo  # noqa: E402  tools/demo.py


def load(path):
    return Config.fromfile(osp.join(REPO, path)).to_dict()


def diff(child, parent, ignore=('train_pipeline.',)):
    """{key: value in child} for every dotted key whose value differs."""
    a, b = flat(child), flat(parent)
    keys = {k for k in set(a) | set(b) if not k.startswith(ignore)}
    return {k: a.get(k) for k in keys if a.get(k) != b.get(k)}


SCHEDULE = {  # every demo pretraining: 300 iterations, 20 of warmup, then cosine
    'train_cfg.type': 'IterBasedTrainLoop', 'train_cfg.max_iters': 300,
    'param_scheduler.0.by_epoch': False, 'param_scheduler.0.end': 20,
    'param_scheduler.1.type': 'CosineAnnealingLR', 'param_scheduler.1.by_epoch': False,
    'param_scheduler.1.begin': 20, 'param_scheduler.1.end': 300, 'param_scheduler.1.T_max': 280,
    'train_dataloader.batch_size': 8,
}
# The method's learning rate for 256 images, scaled to the batch of 8 by the square root.
SQRT_SCALE = (8 / 256) ** 0.5


def assert_soco_demo_budget(cfg):
    """The demo's schedule, and LARS at SoCo's lr for 256 images (1.0; 4.0 for
    8 x 128) scaled to the batch of 8."""
    flat_cfg = flat(cfg)
    for key, value in SCHEDULE.items():
        assert flat_cfg[key] == value, key
    assert cfg['optim_wrapper']['optimizer'] == dict(
        type='LARS', lr=pytest.approx(1.0 * SQRT_SCALE, abs=5e-3), momentum=0.9,
        weight_decay=1e-5, trust_coefficient=0.001, eps=1e-8)


def test_pretraining_configs_are_what_the_demo_promises():
    crosscl = load(demo.ALGORITHMS['crosscl'].config)
    flat_crosscl = flat(crosscl)
    for key, value in SCHEDULE.items():
        assert flat_crosscl[key] == value, key
    base = load('configs/crosscl_r50fpn_200e_in1k.py')
    assert crosscl['optim_wrapper']['optimizer']['lr'] == pytest.approx(
        base['optim_wrapper']['optimizer']['lr'] * SQRT_SCALE, abs=5e-4)
    assert (crosscl['model']['momentum'], crosscl['model']['queue_len']) == (0.99, 16)
    crop = crosscl['train_dataloader']['dataset']['pipeline'][1]
    assert (crop['type'], crop['size']) == ('PairedRandomResizedCrop', 96)
    assert crosscl['default_hooks']['checkpoint']['interval'] == 300
    # The model, loss and windows are the 200e recipe's; only the budget changes.
    changed = diff(crosscl, base)
    assert {k.split('.')[0] for k in changed} == {
        'img_size', 'batch_size', 'max_iters', 'warmup_iters', 'lr', 'model', 'train_dataloader',
        'optim_wrapper', 'param_scheduler', 'train_cfg', 'log_processor', 'default_hooks',
        'env_cfg', 'randomness'}
    assert {k for k in changed if k.startswith('model.')} == {'model.queue_len',
                                                              'model.momentum'}

    # The ablation is CrossCL without the FPN and its four terms, nothing else.
    ablation = load(demo.ALGORITHMS['global-only'].config)
    assert ablation['model']['fpn'] is None
    assert diff(ablation, crosscl, ignore=('train_pipeline.', 'model.fpn')) == {
        'model.loss_weights.loss_p4': 0, 'model.loss_weights.loss_p3': 0,
        'model.loss_weights.loss_p4_p3': 0, 'model.loss_weights.loss_p3_p4': 0}

    detco = load(demo.ALGORITHMS['detco'].config)
    flat_detco = flat(detco)
    for key, value in SCHEDULE.items():
        assert flat_detco[key] == value, key
    assert detco['optim_wrapper']['optimizer']['lr'] == crosscl['optim_wrapper']['optimizer']['lr']
    assert (detco['model']['momentum'], detco['model']['queue_len']) == (0.99, 16)
    changed = diff(detco, load('configs/detco_r50_200e_in1k.py'))
    assert {k for k in changed if k.startswith('train_dataloader.dataset.pipeline')} == {
        'train_dataloader.dataset.pipeline.1.sizes',
        'train_dataloader.dataset.pipeline.4.patch_size'}
    assert changed['train_dataloader.dataset.pipeline.1.sizes'] == (96, 96, 108, 108)
    assert changed['train_dataloader.dataset.pipeline.4.patch_size'] == 28

    soco = load(demo.ALGORITHMS['soco'].config)
    assert_soco_demo_budget(soco)
    changed = diff(soco, load('configs/soco_r50fpn_400e_in1k.py'))
    assert {k for k in changed if k.startswith('train_dataloader.dataset.pipeline')} == {
        'train_dataloader.dataset.pipeline.2.view_sizes',
        'train_dataloader.dataset.pipeline.2.level_size_limits'}
    assert changed['train_dataloader.dataset.pipeline.2.view_sizes'] == (96, 96, 48)
    # SoCo's limits 48, 96, 192, 224 scaled by 96 / 224 and rounded
    assert changed['train_dataloader.dataset.pipeline.2.level_size_limits'] == tuple(
        round(v * 96 / 224) for v in (48, 96, 192, 224))
    assert {k for k in changed if k.startswith('model.')} == {
        'model.head.conv_channels', 'model.head.fc_channels', 'model.projector.in_channels'}


def test_finetuning_config_and_what_each_conversion_loads(tmp_path):
    """The demo's fine-tuning settings are explicit; SoCo's pretrained box head
    has the fine-tuning head's widths and loads into it; each algorithm's
    conversion is loaded where it was exported."""
    ft = load(demo.FINETUNE_CONFIG)
    model = ft['model']
    head = model['roi_head']['bbox_head']
    assert (head['type'], head['conv_out_channels'], head['fc_out_channels']) == \
        ('Shared4Conv1FCBBoxHead', 64, 256)
    assert model['roi_head']['mask_head']['conv_out_channels'] == 64
    assert model['train_cfg']['rcnn']['sampler']['num'] == 32
    assert model['test_cfg']['rpn']['max_per_img'] == 50
    assert model['test_cfg']['rcnn']['max_per_img'] == 20
    assert ft['train_cfg']['max_epochs'] == 8 and ft['train_dataloader']['batch_size'] == 2
    assert ft['param_scheduler'][1]['milestones'] == [7]
    assert ft['train_dataloader']['dataset']['pipeline'][2]['scale'] == (256, 192)

    soco = load(demo.ALGORITHMS['soco'].config)['model']
    assert (soco['head']['conv_channels'], soco['head']['fc_channels'], soco['head']['num_convs'],
            soco['neck']['out_channels']) == (64, 256, 4, head['in_channels'])

    # SoCo's head, converted with --with-fpn --with-box-head, loads into the demo's
    # Mask R-CNN box head (a ResNet-18 backbone keeps this test light; the head sees
    # only the 256-channel FPN).
    from crosscl_mm.converters import convert
    from crosscl_mm.registry import MODELS
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmdet.utils import register_all_modules
    from mmengine.registry import DefaultScope
    soco_cfg = dict(soco, backbone=dict(soco['backbone'], depth=18),
                    neck=dict(soco['neck'], in_channels=[64, 128, 256, 512]))
    torch.manual_seed(0)
    pretrained = MODELS.build(soco_cfg)
    converted = convert({'state_dict': pretrained.state_dict()}, 'mmdet', with_fpn=True,
                        with_box_head=True).state_dict
    ckpt = str(tmp_path / 'soco_mmdet.pth')
    torch.save({'state_dict': converted, 'meta': {'converter': 'crosscl_mm'}}, ckpt)
    path = demo.finetune_config(str(tmp_path), 'finetune_soco', str(tmp_path / 'shapes'), ckpt,
                                demo.ALGORITHMS['soco'], None, 0)
    cfg = Config.fromfile(path)
    assert cfg.model.neck.init_cfg[1] == dict(type='Pretrained', checkpoint=ckpt, prefix='neck.')
    assert cfg.model.roi_head.bbox_head.init_cfg[-1] == dict(
        type='Pretrained', checkpoint=ckpt, prefix='roi_head.bbox_head.')
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmdet'):
        roi_head = MMDET_MODELS.build(cfg.model.roi_head)
    head_weights = {k[len('roi_head.'):]: v for k, v in converted.items()
                    if k.startswith('roi_head.')}
    assert len(head_weights) == 4 * 6 + 2  # 4 x (conv weight + BN's 5), the fc's weight, bias
    missing, unexpected = roi_head.load_state_dict(head_weights, strict=False)
    assert not unexpected
    assert not [k for k in missing if k.startswith('bbox_head.shared_')]
    # The config's init_cfg itself: the protocol's init, then the pretrained convs and fc.
    with DefaultScope.overwrite_default_scope('mmdet'):
        initialised = MMDET_MODELS.build(cfg.model.roi_head.bbox_head)
    initialised.init_weights()
    torch.testing.assert_close(initialised.shared_fcs[0].weight, pretrained.head.fc.weight)
    torch.testing.assert_close(initialised.shared_convs[3].conv.weight,
                               head_weights['bbox_head.shared_convs.3.conv.weight'])
    assert initialised.fc_cls.weight.std().item() == pytest.approx(0.01, rel=0.2)

    # CrossCL: backbone and FPN; DetCo and the global-only ablation: backbone only.
    for name, neck, box_head in (('crosscl', True, False), ('detco', False, False),
                                 ('global-only', False, False)):
        cfg = Config.fromfile(demo.finetune_config(
            str(tmp_path), f'finetune_{name}', str(tmp_path / 'shapes'), 'w.pth',
            demo.ALGORITHMS[name], 2, 1))
        assert cfg.model.backbone.init_cfg.checkpoint == 'w.pth'
        assert (isinstance(cfg.model.neck.init_cfg, list)) == neck, name
        head_init = cfg.model.roi_head.bbox_head.init_cfg
        assert any(i['type'] == 'Pretrained' for i in head_init) == box_head, name
        assert cfg.train_cfg.max_epochs == 2 and cfg.randomness.seed == 1
    random_init = Config.fromfile(demo.finetune_config(
        str(tmp_path), 'finetune_random', str(tmp_path / 'shapes'), None, None, None, 0))
    assert random_init.model.backbone.init_cfg is None and random_init.train_cfg.max_epochs == 8


def test_soco_proposals_for_the_demo_photos_feed_soco_dataset(tmp_path):
    """The demo's proposal step writes records that SoCo's demo config
    (with the proposals folder the demo passes) reads into views and boxes."""
    from crosscl_mm.registry import DATASETS
    from crosscl_mm.utils.sample_photos import export_photo_folder
    for name in ('chelsea.png', 'coffee.png'):
        skimage_photo(name)
    photos, proposals = str(tmp_path / 'photos'), str(tmp_path / 'soco_proposals')
    export_photo_folder(photos, ['chelsea.png', 'coffee.png'], max_side=128)
    demo.generate_proposals(photos, proposals, str(tmp_path / 'proposals.log'))
    assert 'done: 2 computed' in open(tmp_path / 'proposals.log').read()

    cfg = Config.fromfile(osp.join(REPO, demo.ALGORITHMS['soco'].config))
    cfg.merge_from_dict(dict(kv.split('=', 1) for kv in demo.soco_options(proposals)))
    dataset_cfg = dict(cfg.train_dataloader.dataset, data_root=photos)
    dataset = DATASETS.build(dataset_cfg)
    assert len(dataset) == 2
    torch.manual_seed(0)
    sample = dataset[0]
    views = sample['inputs']
    assert [tuple(v.shape) for v in views] == [(3, 96, 96), (3, 96, 96), (3, 48, 48)]
    regions = sample['data_samples'].regions_1_2
    assert regions.boxes.shape == (4, 4) and ((regions.levels >= -1) & (regions.levels < 4)).all()

    # SoCo-C4's demo config reads the same folder: two views of 96 px, 4 boxes each.
    cfg = Config.fromfile(osp.join(REPO, demo.ALGORITHMS['soco-c4'].config))
    cfg.merge_from_dict(dict(kv.split('=', 1) for kv in demo.soco_options(proposals)))
    sample = DATASETS.build(dict(cfg.train_dataloader.dataset, data_root=photos))[1]
    assert [tuple(v.shape) for v in sample['inputs']] == [(3, 96, 96), (3, 96, 96)]
    assert sample['data_samples'].regions_2.boxes.shape == (4, 4)


def test_curve_ends_are_the_logged_means():
    """Losses are logged as means over 10 iterations (taken at iteration 10
    and at the last), accuracies per iteration (averaged here)."""
    records = [dict(iter=i, loss=100.0 - i, loss_p4=2.0 * i, acc_p4=float(i), lr=0.1)
               for i in range(1, 31)]
    ends = demo.curve_ends(records)
    assert ends == dict(loss=(90.0, 70.0), loss_p4=(20.0, 60.0), acc_p4=(5.5, 25.5))
    assert demo.curve_ends(records[:15]) == {}


def test_baseline_replaces_the_ablation_and_schedule_options_fit_the_configs():
    assert demo.resolve_algos(['crosscl', 'global-only'], None) == ['crosscl', 'global-only']
    assert demo.resolve_algos(['crosscl', 'global-only'], 'mocov2') == ['crosscl', 'mocov2']
    assert demo.resolve_algos(['crosscl', 'soco', 'detco'], 'densecl') == \
        ['crosscl', 'soco', 'detco', 'densecl']
    assert demo.resolve_algos(['crosscl', 'global-only'], 'global-only') == \
        ['crosscl', 'global-only']
    from crosscl_mm.utils.sample_photos import SKIMAGE_PHOTOS
    assert set(demo.HELD_OUT_PHOTOS) < set(SKIMAGE_PHOTOS)  # the rest is pretrained on

    # --pretrain-iters rewrites the schedule of every demo config consistently.
    for name in ('crosscl', 'soco', 'detco'):
        cfg = Config.fromfile(osp.join(REPO, demo.ALGORITHMS[name].config))
        default = dict(kv.split('=', 1) for kv in demo.schedule_options(cfg.train_cfg.max_iters))
        assert {k: int(v) for k, v in default.items()} == {
            'train_cfg.max_iters': 300, 'param_scheduler.0.end': 20,
            'param_scheduler.1.begin': 20, 'param_scheduler.1.end': 300,
            'param_scheduler.1.T_max': 280, 'default_hooks.checkpoint.interval': 300}
        assert int(default['param_scheduler.0.end']) == cfg.param_scheduler[0].end
    short = dict(kv.split('=', 1) for kv in demo.schedule_options(10))
    assert short['param_scheduler.0.end'] == '9' and short['param_scheduler.1.T_max'] == '1'


def test_pretraining_tiles_cut_the_photos(tmp_path):
    """``export_photo_folder(grid=2)``: each photo, shrunk to twice the side,
    cut into four tiles that put the photo back together."""
    from PIL import Image
    from crosscl_mm.utils.sample_photos import export_photo_folder, skimage_photo_paths
    skimage_photo('chelsea.png')
    tiles = export_photo_folder(str(tmp_path), ['chelsea.png'], max_side=64, grid=2)
    assert [osp.basename(p) for p in tiles] == [f'chelsea_r{r}c{c}.jpg'
                                                for r in (0, 1) for c in (0, 1)]
    photo = Image.open(skimage_photo_paths(['chelsea.png'])[0]).convert('RGB')
    photo.thumbnail((128, 128))
    w, h = photo.width // 2, photo.height // 2
    for path in tiles:
        r, c = int(path[-7]), int(path[-5])
        tile = np.asarray(Image.open(path), dtype=np.float32)
        expected = np.asarray(photo.crop((c * w, r * h, (c + 1) * w, (r + 1) * h)),
                              dtype=np.float32)
        assert tile.shape == expected.shape == (h, w, 3)
        assert np.abs(tile - expected).mean() < 4  # JPEG at quality 90


def test_regioncl_demo_configs_are_the_recipes_at_the_demo_budget():
    """`--algos regioncl-m regioncl-d`: the demo's schedule and batch, the lr
    scaled by the square root of the batch, boxes of 1-2 cells at 96 px;
    the pipelines change the view size only."""
    for name, recipe, lr in (('regioncl-m', 'configs/regioncl-m_r50_200e_in1k.py',
                              0.15 * (8 / 1024) ** 0.5),
                             ('regioncl-d', 'configs/regioncl-d_r50_200e_in1k.py',
                              0.03 * SQRT_SCALE)):
        cfg = load(demo.ALGORITHMS[name].config)
        flat_cfg = flat(cfg)
        for key, value in SCHEDULE.items():
            assert flat_cfg[key] == value, (name, key)
        assert cfg['optim_wrapper']['type'] == 'OptimWrapper'  # float32 on the CPU
        assert cfg['optim_wrapper']['optimizer']['lr'] == pytest.approx(lr, abs=5e-4)
        changed = diff(cfg, load(recipe))
        assert {k for k in changed if k.startswith('model.')} == {
            'model.queue_len', 'model.momentum', 'model.swap.min_cells', 'model.swap.max_cells'}
        assert (cfg['model']['swap']['min_cells'], cfg['model']['swap']['max_cells']) == (1, 2)
        assert {k for k in changed if k.startswith('train_dataloader.dataset.pipeline')} == {
            'train_dataloader.dataset.pipeline.1.sizes'}
        assert changed['train_dataloader.dataset.pipeline.1.sizes'] == (96, 96)


def test_soco_c4_demo_config_and_its_backbone_conversion(tmp_path):
    """`--algos soco-c4`: the 400e C4 recipe at the demo's budget (views of 96
    px, LARS at 1.0 x sqrt(8 / 256)), the proposals folder the demo passes;
    converted with --no-c4 for the demo's R50-FPN, the whole ResNet (res5, the
    pretrained box head, as layer4) lands in the fine-tuning backbone."""
    from mmdet.models.backbones import ResNet

    from crosscl_mm.converters import convert
    from test_soco_c4 import soco_c4_model
    algo = demo.ALGORITHMS['soco-c4']
    soco_c4 = load(algo.config)
    assert_soco_demo_budget(soco_c4)
    changed = diff(soco_c4, load('configs/soco_r50c4_400e_in1k.py'))
    assert {k for k in changed if k.startswith('train_dataloader.dataset.pipeline')} == {
        'train_dataloader.dataset.pipeline.2.view_sizes',
        'train_dataloader.dataset.pipeline.2.level_size_limits'}
    assert changed['train_dataloader.dataset.pipeline.2.view_sizes'] == (96, 96)
    assert not [k for k in changed if k.startswith('model.')]
    cfg = Config.fromfile(osp.join(REPO, algo.config))
    cfg.merge_from_dict(dict(kv.split('=', 1) for kv in demo.soco_options('props')))
    assert cfg.train_dataloader.dataset.proposals_root == 'props'

    # The conversion the demo runs (--to mmdet --no-c4) loads into an mmdet ResNet-50
    # (at base width 16 here) with nothing missing, res5 from the box head.
    assert algo.convert_args == ('--to', 'mmdet', '--no-c4')
    torch.manual_seed(0)
    pretrained = soco_c4_model()
    converted = convert({'state_dict': pretrained.state_dict()}, 'mmdet', c4=False).state_dict
    backbone = ResNet(depth=50, base_channels=16)
    missing, unexpected = backbone.load_state_dict(
        {k[len('backbone.'):]: v for k, v in converted.items()}, strict=False)
    assert not missing and not unexpected and all(k.startswith('backbone.') for k in converted)
    torch.testing.assert_close(converted['backbone.layer4.2.conv3.weight'],
                               pretrained.head.layer4[2].conv3.weight)
    ft = Config.fromfile(demo.finetune_config(str(tmp_path), 'finetune_soco-c4',
                                              str(tmp_path / 'shapes'), 'w.pth', algo, None, 0))
    assert ft.model.backbone.init_cfg == dict(type='Pretrained', checkpoint='w.pth',
                                              prefix='backbone.')
    assert ft.model.neck.get('init_cfg') is None or not isinstance(ft.model.neck.init_cfg, list)


@pytest.mark.slow  # about 80 s of CPU: two pretrainings and two retrievals
def test_two_runs_of_a_tiny_demo_agree_exactly(tmp_path):
    """The demo's pretraining (seeded by mmengine, deterministic algorithms,
    a fixed thread count in the subprocess) and its region retrieval, run
    twice on a tiny configuration, give the same losses, weights and
    retrieval scores to the bit; the run's config holds the seed it was given."""
    from crosscl_mm.utils.sample_photos import export_photo_folder
    names = ['chelsea.png', 'coffee.png', 'astronaut.png', 'rocket.jpg']
    for name in names:
        skimage_photo(name)
    photos, held_out = str(tmp_path / 'photos'), str(tmp_path / 'held_out')
    export_photo_folder(photos, names[:2], max_side=160, grid=2)  # 8 tiles
    export_photo_folder(held_out, names[2:], max_side=128)
    tiny = ['train_dataloader.batch_size=4', 'model.queue_len=8']
    runs = []
    for name in ('first', 'second'):
        work = str(tmp_path / name)
        ckpt, _ = demo.pretrain(demo.CROSSCL_CONFIG, work, photos, 3, tiny, seed=3, threads=1)
        losses = [{k: v for k, v in r.items() if k.startswith('loss')}
                  for r in demo.scalars(work) if 'loss' in r]
        _, _, report = demo.region_retrieval(held_out, {'crosscl': ckpt}, 1, [0],
                                             work + '_retrieval.json', work + '_retrieval.log',
                                             threads=1)
        runs.append((losses, torch.load(ckpt, map_location='cpu', weights_only=False),
                     report['models']))
        dumped = Config.fromfile(osp.join(work, osp.basename(demo.CROSSCL_CONFIG)))
        assert dumped.randomness == dict(seed=3, deterministic=True)
    (losses_a, ckpt_a, scores_a), (losses_b, ckpt_b, scores_b) = runs
    assert len(losses_a) == 3 and all(np.isfinite(list(r.values())).all() for r in losses_a)
    assert len({r['loss'] for r in losses_a}) > 1  # it trained: the loss moved
    assert losses_a == losses_b  # exact floats, as logged
    state_a, state_b = ckpt_a['state_dict'], ckpt_b['state_dict']
    assert state_a.keys() == state_b.keys()
    changed = [k for k in state_a if not torch.equal(state_a[k], state_b[k])]
    assert not changed, changed[:5]
    assert scores_a == scores_b
    assert set(scores_a) == {'random init', 'crosscl'}
    assert scores_a['crosscl']['percent'] != scores_a['random init']['percent']


def test_differences_to_random_init_over_pretraining_runs_and_their_verdicts():
    """Each run minus random init view draw by view draw; the table pools
    runs x draws (sample std) and lists each run's mean; a sign is claimed
    only when every run and draw has it."""
    runs = [demo.PretrainRun(demo.ALGORITHMS[a], seed, 2, '/w')
            for a in ('crosscl', 'global-only') for seed in (0, 1)]
    report = {'levels': ['c4', 'p4'], 'models': {
        'random init': {'percent': {'c4': [10.0, 20.0], 'p4': [30.0, 30.0]}},
        'crosscl_seed0_t2': {'percent': {'c4': [13.0, 22.0], 'p4': [29.0, 31.0]}},
        'crosscl_seed1_t2': {'percent': {'c4': [11.0, 26.0], 'p4': [30.0, 28.0]}},
        'global-only_seed0_t2': {'percent': {'c4': [9.0, 19.0]}},
        'global-only_seed1_t2': {'percent': {'c4': [8.0, 17.0]}}}}
    diffs = demo.differences_to_random_init(report, runs)
    assert diffs == {'crosscl': {'c4': [[3.0, 2.0], [1.0, 6.0]], 'p4': [[-1.0, 1.0], [0.0, -2.0]]},
                     'global-only': {'c4': [[-1.0, -1.0], [-2.0, -3.0]]}}
    labels = {'crosscl': 'CrossCL', 'global-only': 'G'}
    table = demo.spread_table(diffs, labels, ['c4', 'p4']).splitlines()
    # CrossCL C4: values 3, 2, 1, 6: mean 3, sample std sqrt(14 / 3) = 2.16; run means 2.5, 3.5
    assert table[2] == '| CrossCL | +3.0 ± 2.2 [+2.5, +3.5] | -0.5 ± 1.3 [+0.0, -1.0] |'
    assert table[3] == '| G | -1.8 ± 1.0 [-1.0, -2.5] | no FPN |'
    lines = demo.conclusions(diffs, labels)
    assert lines[0].startswith('- CrossCL, C4: +3.0 ± 2.2 points, above random init in all 4 '
                               '(2 pretraining runs x 2 view draws)')
    assert 'no consistent sign: above in 1 of 4' in lines[1]  # P4: a 0 is not above
    assert 'below random init in all 4' in lines[2]
