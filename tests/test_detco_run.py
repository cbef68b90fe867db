"""DetCo end to end: the recipe pinned, a two-process CPU run of the real
config (made tiny on the command line) with checkpoint and resume, and the
converted backbone loaded into mmdet's Mask R-CNN."""
import glob
import math
import os.path as osp
from collections import OrderedDict

import pytest
import torch
from mmengine.config import Config

import crosscl_mm  # noqa: F401
from crosscl_mm.utils.work_dir import read_scalars

from conftest import REPO, free_port, python_cmd, run

CONFIG = osp.join(REPO, 'configs', 'detco_r50_200e_in1k.py')
LEVELS = ('res2', 'res3', 'res4', 'res5')
LOSSES = [f'loss_{lvl}_{t}' for lvl in LEVELS for t in ('g2g', 'l2l', 'l2g')]


def flat(cfg, prefix=''):
    """A config as {dotted.key: value}, list items by index."""
    out = {}
    items = cfg.items() if isinstance(cfg, dict) else enumerate(cfg)
    for k, v in items:
        key = f'{prefix}{k}'
        if isinstance(v, (dict, list)) and v:
            out.update(flat(v, key + '.'))
        else:
            out[key] = tuple(v) if isinstance(v, list) else v
    return out


def load(name):
    return Config.fromfile(osp.join(REPO, 'configs', name)).to_dict()


def test_recipe_is_pinned():
    cfg = load('detco_r50_200e_in1k.py')
    model = cfg['model']
    assert (model['type'], model['queue_len'], model['feat_dim'], model['momentum']) == \
        ('DetCo', 65536, 128, 0.999)
    assert model['loss'] == dict(type='InfoNCELoss', temperature=0.2)
    assert model['shuffle_key_batches'] is True
    assert model['backbone']['depth'] == 50
    assert tuple(model['backbone']['out_indices']) == (0, 1, 2, 3)
    assert tuple(model['level_names']) == LEVELS
    assert tuple(model['level_channels']) == (256, 512, 1024, 2048)
    assert tuple(model['level_weights']) == (0.1, 0.4, 0.7, 1.0)
    assert model['global_hid_channels'] is None and model['local_hid_channels'] is None
    assert model['local_neck'] == dict(type='PatchSetProjectionNeck', num_patches=9, norm_cfg=None)
    assert cfg['optim_wrapper']['optimizer'] == dict(type='SGD', lr=0.03, momentum=0.9,
                                                     weight_decay=1e-4)
    assert cfg['param_scheduler'][0]['type'] == 'CosineAnnealingLR'
    assert cfg['param_scheduler'][0]['T_max'] == 200 and cfg['train_cfg']['max_epochs'] == 200
    loader = cfg['train_dataloader']
    assert loader['batch_size'] * 8 == 256 and loader['drop_last'] is True
    steps = {t['type']: t for t in loader['dataset']['pipeline']}
    pipeline = loader['dataset']['pipeline']
    assert [t['type'] for t in pipeline] == [
        'LoadImageRGB', 'MultiViewRandomResizedCrop', 'ViewColorAugment', 'ViewColorAugment',
        'JigsawPatches', 'PackRegionPairInputs']
    crop = steps['MultiViewRandomResizedCrop']
    assert tuple(crop['sizes']) == (224, 224, 255, 255) and crop['flip_prob'] == 0.5
    assert [tuple(s) for s in crop['scales']] == [(0.2, 1.0), (0.2, 1.0), (0.6, 1.0), (0.6, 1.0)]
    color_global, color_local = dict(pipeline[2]), dict(pipeline[3])
    assert (color_global['jitter_prob'], color_global['brightness'], color_global['contrast'],
            color_global['saturation'], color_global['hue'], color_global['gray_prob'],
            color_global['blur_prob']) == (0.8, .4, .4, .4, .1, .2, .5)
    # OpenSelfSup's MoCo v2 order (configs/selfsup/moco/r50_v2.py:33-53): test_detco_views
    assert tuple(color_global['ops']) == ('jitter', 'gray', 'blur')
    # checkpoints carry the global views' backbone BN statistics: test_global_view_bn
    assert cfg['custom_hooks'] == [dict(type='GlobalViewBNHook', num_iters=200, views=(0, 1))]
    # the local crops (before the cut) share the global views' parameters
    assert tuple(color_global.pop('views')) == (0, 1) and tuple(color_local.pop('views')) == (2, 3)
    assert color_local == color_global
    jigsaw = steps['JigsawPatches']
    assert (tuple(jigsaw['views']), jigsaw['grid'], jigsaw['patch_size'], jigsaw['shared_order']) \
        == ((2, 3), 3, 64, False)

    # The 800-epoch config and each ablation change only what they name (the
    # pipeline variable itself is only a helper of the config files).
    base = {k: v for k, v in flat(cfg).items() if not k.startswith('train_pipeline.')}
    changes = {
        'detco_r50_800e_in1k.py': {'param_scheduler.0.T_max': 800, 'param_scheduler.0.end': 800,
                                   'train_cfg.max_epochs': 800},
        'detco_r50_200e_in1k_equal-weights.py': {'model.level_weights': (1.0, 1.0, 1.0, 1.0)},
        'detco_r50_200e_in1k_shared-order.py': {
            'train_dataloader.dataset.pipeline.4.shared_order': True},
        'detco_r50_200e_in1k_wide-local-head.py': {
            'model.local_hid_channels': (2304, 4608, 9216, 18432)},
        'detco_r50_200e_in1k_blur-first.py': {
            'train_dataloader.dataset.pipeline.2.ops': ('blur', 'jitter', 'gray'),
            'train_dataloader.dataset.pipeline.3.ops': ('blur', 'jitter', 'gray')},
    }
    for name, expected in changes.items():
        other = {k: v for k, v in flat(load(name)).items() if not k.startswith('train_pipeline.')}
        diff = {k: other.get(k) for k in set(base) | set(other) if base.get(k) != other.get(k)}
        if name.startswith('detco_r50_800e'):  # inherits the leaf's convert_to_iter_based
            diff.pop('param_scheduler.0.convert_to_iter_based', None)
        assert diff == expected, name
    randaug = load('detco_r50_200e_in1k_randaug.py')['train_dataloader']['dataset']['pipeline']
    assert randaug[2] == dict(type='ViewRandAugment', num_ops=2, magnitude=9, views=(0, 1))
    assert randaug[:2] + randaug[3:] == cfg['train_dataloader']['dataset']['pipeline']


def tiny_options(photo_dir, *extra):
    """The real config, made tiny: ResNet-18, 64 px global views, 126 px local
    views cut into 32 px patches, short queues, 2 images per process."""
    return ['--cfg-options', f'train_dataloader.dataset.data_root={photo_dir}',
            'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
            'model.backbone.depth=18', 'model.level_channels=[64,128,256,512]',
            'model.queue_len=64',
            'train_dataloader.dataset.pipeline.1.sizes=[64,64,126,126]',
            'train_dataloader.dataset.pipeline.4.patch_size=32',
            'train_cfg.max_epochs=1', 'default_hooks.logger.interval=1',
            'default_hooks.checkpoint.interval=1', 'env_cfg.cudnn_benchmark=False', *extra]


def dist_train(work_dir, *args):
    env = dict(PORT=str(free_port()), PYTHON=python_cmd()[0], OMP_NUM_THREADS='1')
    return run(['bash', 'tools/dist_train.sh', CONFIG, '2', '--work-dir', work_dir, *args],
               env=env, timeout=1500)


def test_two_cpu_processes_all_terms_finite_checkpoint_then_resume(photo_dir, tmp_path):
    work_dir = str(tmp_path / 'detco')
    dist_train(work_dir, *tiny_options(photo_dir))
    log = '\n'.join(open(p).read() for p in glob.glob(osp.join(work_dir, '*', '*.log')))
    assert 'Distributed training: True' in log and 'GPU number: 2' in log, log[:3000]
    # the default GlobalViewBNHook ran over both processes (one pass: 8 / (2 x 2) batches)
    assert 'GlobalViewBNHook: backbone BatchNorm statistics of 20 layers re-estimated on ' \
        'views (0, 1) of 2 training batches per process, for the checkpoint' in log
    assert log.index('re-estimated on views') < log.index('Saving checkpoint at 1 epochs')
    first = [r for r in read_scalars(work_dir) if 'loss_res2_g2g' in r]
    assert len(first) == 2  # 8 photos / (2 processes x 2 images)
    for record in first:
        for name in LOSSES:
            assert math.isfinite(record[name]) and record[name] > 0, (name, record)
            assert 0 <= record[name.replace('loss_', 'acc_')] <= 100
        assert record['loss'] == pytest.approx(sum(record[n] for n in LOSSES), rel=1e-4)
    ckpt = torch.load(osp.join(work_dir, 'epoch_1.pth'), map_location='cpu', weights_only=False)
    state = ckpt['state_dict']
    for level in LEVELS:
        for kind in ('global', 'local'):
            assert int(state[f'queues.{level}_{kind}.ptr']) == 8  # 2 iterations x 4 keys
    assert state['local_necks.res5.mlp.0.weight'].shape == (512, 9 * 512)

    dist_train(work_dir, '--resume', *tiny_options(photo_dir, 'train_cfg.max_epochs=2'))
    log = '\n'.join(open(p).read() for p in sorted(glob.glob(osp.join(work_dir, '*', '*.log'))))
    assert 'resumed epoch: 1' in log and 'Epoch(train) [2][2/2]' in log
    second = torch.load(osp.join(work_dir, 'epoch_2.pth'), map_location='cpu', weights_only=False)
    assert int(second['state_dict']['queues.res3_local.ptr']) == 16
    assert int(second['state_dict']['momentum_encoder.steps']) == 4


# ---- conversion ------------------------------------------------------------

@pytest.fixture(scope='module')
def detco_r50_checkpoint(module_tmp_path):
    from crosscl_mm.registry import MODELS
    torch.manual_seed(0)
    cfg = Config.fromfile(CONFIG).model.to_dict()
    # The real backbone and stages; narrow heads and queues keep the test light.
    cfg.update(queue_len=8, global_hid_channels=(8,) * 4, local_hid_channels=(8,) * 4)
    model = MODELS.build(cfg)
    model.init_weights()
    with torch.no_grad():  # non-trivial BN statistics, so a mix-up of norm tensors shows
        for name, buf in model.backbone.named_buffers():
            if name.endswith('running_mean'):
                buf.uniform_(-0.1, 0.1)
            elif name.endswith('running_var'):
                buf.uniform_(0.5, 1.5)
    path = str(module_tmp_path / 'epoch_200.pth')
    torch.save({'meta': {'epoch': 200}, 'state_dict': model.state_dict()}, path)
    return model.eval(), path


def mmdet_model(config):
    """A detector from one of mmdet's own configs (``mmdet::...``)."""
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmdet.utils import register_all_modules
    from mmengine.registry import DefaultScope
    register_all_modules(init_default_scope=False)
    cfg = Config.fromstring(f'_base_ = {config!r}', file_format='.py')
    cfg.model.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MMDET_MODELS.build(cfg.model).eval()


def converter_main():
    """``main(argv)`` of tools/model_converters/convert_pretrained.py, run in
    this process (the command line without a second interpreter start)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'convert_pretrained', osp.join(REPO, 'tools/model_converters/convert_pretrained.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_converted_backbone_loads_into_mmdet_mask_rcnn_and_reproduces_c2_c5(
        detco_r50_checkpoint, tmp_path, capsys):
    model, path = detco_r50_checkpoint
    out = str(tmp_path / 'detco_mmdet.pth')
    assert converter_main()([path, out, '--to', 'mmdet']) == 0
    converted = torch.load(out, map_location='cpu', weights_only=True)
    # the whole ResNet-50, nothing else
    assert set(converted['state_dict']) == {'backbone.' + k for k in model.backbone.state_dict()}
    printed = capsys.readouterr().out
    assert f'exported {len(converted["state_dict"])} tensors' in printed
    assert 'the whole FPN (not pretrained: the checkpoint has none)' in printed
    assert converted['meta']['converted_from'] == path
    detector = mmdet_model('mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py')
    missing, unexpected = detector.load_state_dict(converted['state_dict'], strict=False)
    assert not unexpected
    assert not [k for k in missing if k.startswith('backbone.')]
    assert [k for k in missing if k.startswith('neck.')]  # the FPN starts from its own init
    x = torch.randn(2, 3, 96, 128)
    with torch.no_grad():
        for ours, theirs in zip(model.backbone(x), detector.backbone(x)):
            torch.testing.assert_close(theirs, ours, rtol=1e-5, atol=1e-5)


def test_detectron2_and_torchvision_targets_follow_the_official_converter(detco_r50_checkpoint):
    """The official DetCo converter (benchmarks/detection/convert-pretrain-to-
    detectron2.py) renames a backbone-only torchvision state dict; its rules,
    written here, give the names our detectron2 export must have."""
    import torchvision
    from crosscl_mm.converters import convert, read_pretrained_checkpoint
    model, path = detco_r50_checkpoint
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    assert read_pretrained_checkpoint(ckpt, path).source == 'crosscl_mm DetCo'

    torchvision_sd = convert(ckpt, 'torchvision', path=path).state_dict
    resnet = torchvision.models.resnet50()
    missing, unexpected = resnet.load_state_dict(torchvision_sd, strict=False)
    assert sorted(missing) == ['fc.bias', 'fc.weight'] and not unexpected

    official = OrderedDict()
    for k, v in torchvision_sd.items():
        new = k if 'layer' in k else 'stem.' + k
        for t in (1, 2, 3, 4):
            new = new.replace(f'layer{t}', f'res{t + 1}')
        for t in (1, 2, 3):
            new = new.replace(f'bn{t}', f'conv{t}.norm')
        new = new.replace('downsample.0', 'shortcut').replace('downsample.1', 'shortcut.norm')
        official[new] = v.numpy()
    d2 = convert(ckpt, 'detectron2', path=path).state_dict
    assert list(d2) == list(official)
    for k, v in d2.items():
        assert (v.numpy() == official[k]).all(), k
