"""DenseCL's AdelaiDet protocols (FCOS R50 1x, SOLOv2 R50 1x on COCO) train and
evaluate on the CPU: each config's Runner, in this process, a few iterations at
160x128 on the generated shapes data, from a released-layout checkpoint built
here with plain torch (DenseCL's `state_dict` in torchvision names; MoCo v2's
`module.encoder_q.`), converted `--to mmdet`; Precise BN runs and CocoMetric
evaluates (bbox for FCOS, segm for SOLOv2). Only data, size and length change;
model, optimizer and schedule are the config's."""
import copy
import os.path as osp

import pytest
import torch
import torchvision

from conftest import REPO

CONFIGS = osp.join(REPO, 'configs', 'benchmarks', 'mmdetection')
CLASSES = ('circle', 'rectangle', 'triangle')


def released_resnet50(seed):
    """torchvision's ResNet-50 names, random values (its own init), no fc."""
    torch.manual_seed(seed)
    state = torchvision.models.resnet50().state_dict()
    return {k: v for k, v in state.items() if not k.startswith('fc.')}


@pytest.fixture(scope='module')
def checkpoints(module_tmp_path):
    """{method: (converted mmdet checkpoint path, the torchvision tensors)}:
    DenseCL's release (`{'state_dict': torchvision names}`) and a MoCo v2
    checkpoint (`module.encoder_q.` / `encoder_k.`), converted as
    convert_pretrained.py --to mmdet does."""
    from crosscl_mm.converters.encoder_weights import convert, serialise
    densecl = released_resnet50(1)
    moco_q, moco_k = released_resnet50(2), released_resnet50(3)
    layouts = {
        'densecl': {'state_dict': densecl},
        'mocov2': {'state_dict': {**{f'module.encoder_q.{k}': v for k, v in moco_q.items()},
                                  **{f'module.encoder_k.{k}': v for k, v in moco_k.items()}}},
    }
    out = {}
    for method, ckpt in layouts.items():
        path = str(module_tmp_path / f'{method}_mmdet.pth')
        with open(path, 'wb') as f:
            serialise(convert(ckpt, 'mmdet'), 'mmdet', method, f)
        out[method] = (path, densecl if method == 'densecl' else moco_q)
    return out


def tiny_cfg(config, shapes_data, ckpt, work_dir, light_head=False):
    """The config with the shapes data, 160x128 images, 2 iterations of one
    image, Precise BN over 2 batches and 3 classes. ``light_head``: SOLOv2's
    instance head 64 wide on grids of 12 to 4 (the protocol's 512 channels on
    grids of 40 to 12 cost about 70 GMAC an image whatever its size)."""
    from mmengine.config import Config
    import crosscl_mm  # noqa: F401
    cfg = Config.fromfile(osp.join(CONFIGS, config))
    root = shapes_data['coco'] + '/'
    for loader, ann in (('train_dataloader', 'train.json'), ('val_dataloader', 'val.json')):
        ds = cfg[loader].dataset
        ds.data_root, ds.ann_file, ds.data_prefix = root, ann, dict(img='images/')
        ds.metainfo = dict(classes=CLASSES)
        cfg[loader].num_workers, cfg[loader].persistent_workers = 0, False
    cfg.train_dataloader.dataset.pipeline[2].scales = [(160, 96), (160, 128)]
    cfg.val_dataloader.dataset.pipeline[1].scale = (160, 128)
    cfg.test_dataloader = cfg.val_dataloader
    cfg.val_evaluator.ann_file = shapes_data['val']
    cfg.test_evaluator = cfg.val_evaluator
    head = cfg.model.get('bbox_head') or cfg.model.mask_head
    head.num_classes = 3
    if light_head:
        head.feat_channels, head.num_grids = 64, [12, 10, 8, 6, 4]
    if cfg.model.type == 'SOLOv2':  # every mask pixel, every kernel, as masks
        cfg.model.test_cfg.update(mask_thr=0.0, filter_thr=0.0)
    cfg.train_dataloader.batch_size = 1
    cfg.model.backbone.init_cfg.checkpoint = ckpt
    # two iterations leave every score near the prior (0.01): keep them all
    cfg.model.test_cfg.score_thr = 0.0
    cfg.train_cfg.max_iters = 2
    cfg.train_cfg.val_interval = 100  # evaluated by runner.val() below
    cfg.param_scheduler[1].end = 2
    cfg.custom_hooks[0].num_iters = 2
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = 100
    cfg.default_hooks.checkpoint.save_last = False
    cfg.randomness = dict(seed=0)
    cfg.work_dir = work_dir
    return cfg


def check_run(config, shapes_data, checkpoints, method, tmp_path, metric, start_factor,
              light_head=False):
    from mmengine.runner import Runner
    from crosscl_mm.engine.optimizers.detectron2_constructor import NORM_MODULE_TYPES
    ckpt, tensors = checkpoints[method]
    cfg = tiny_cfg(config, shapes_data, ckpt, str(tmp_path / 'work'), light_head)
    assert cfg.param_scheduler[0].start_factor == start_factor
    runner = Runner.from_cfg(cfg)
    model = runner.model
    model.init_weights()  # as runner.train() does first (a second call is a no-op)
    state = model.backbone.state_dict()
    for name in ('conv1.weight', 'bn1.running_var', 'layer4.2.conv3.weight',
                 'layer3.0.downsample.1.bias'):
        assert torch.equal(state[name], tensors[name]), name  # the released tensors
    runner.train()
    # detectron2 v0.2's groups: norm layers 0, every other weight and bias 1e-4;
    # lr after 2 of 1000 linear warmup iterations from the start factor
    decay = {id(p): g['weight_decay'] for g in runner.optim_wrapper.optimizer.param_groups
             for p in g['params']}
    for module in model.modules():
        for p in module.parameters(recurse=False):
            assert decay[id(p)] == (0.0 if isinstance(module, NORM_MODULE_TYPES) else 1e-4)
    lr = 0.01 * (start_factor + (1 - start_factor) * 2 / 1000)  # detectron2's, iteration 2
    assert runner.optim_wrapper.get_lr()['lr'][0] == pytest.approx(lr, rel=1e-6)
    assert [type(h).__name__ for h in runner.hooks].count('DetPreciseBNHook') == 1
    metrics = runner.val()
    assert metrics, 'CocoMetric had no detections to evaluate'
    keys = [f'coco/{metric}_mAP', f'coco/{metric}_mAP_50', f'coco/{metric}_mAP_75']
    assert all(0.0 <= metrics[k] <= 1.0 for k in keys), metrics
    return runner, metrics


def test_fcos_densecl_trains_and_evaluates(shapes_data, checkpoints, tmp_path, one_thread):
    runner, _ = check_run('fcos_r50-fpn_syncbn_gn-head_densecl_90k_coco.py', shapes_data,
                          checkpoints, 'densecl', tmp_path, 'bbox', 0.001)
    neck = runner.model.neck
    assert not hasattr(neck.fpn_convs[3], 'bn') and neck.fpn_convs[3].conv.bias is not None


def test_solov2_densecl_trains_and_evaluates(shapes_data, checkpoints, tmp_path, one_thread):
    check_run('solov2_r50-fpn_syncbn_gn-head_densecl_90k_coco.py', shapes_data, checkpoints,
              'densecl', tmp_path, 'segm', 0.01, light_head=True)


@pytest.mark.slow
@pytest.mark.parametrize('config,metric,start', [
    ('fcos_r50-fpn_syncbn_gn-head_mocov2_90k_coco.py', 'bbox', 0.001),
    ('solov2_r50-fpn_syncbn_gn-head_mocov2_90k_coco.py', 'segm', 0.01)])
def test_mocov2_leaves_train_and_evaluate(config, metric, start, shapes_data, checkpoints,
                                          tmp_path, one_thread):
    check_run(config, shapes_data, checkpoints, 'mocov2', tmp_path, metric, start)


@pytest.mark.parametrize('name,metric,published', [
    ('densecl_fcos_r50-fpn_90k_coco', 'bbox', {'densecl': 40.9, 'mocov2': 40.3}),
    ('densecl_solov2_r50-fpn_90k_coco', 'segm', {'densecl': 35.7, 'mocov2': 35.2})])
def test_protocol_files_name_the_leaves_and_the_published_numbers(name, metric, published):
    """configs/benchmarks/protocols/<name>.yml: its leaves are these configs, each
    over its base, converted --to mmdet; the DenseCL README's numbers."""
    import yaml
    from mmengine.config import Config
    with open(osp.join(REPO, 'configs', 'benchmarks', 'protocols', name + '.yml')) as f:
        protocol = yaml.safe_load(f)
    assert protocol['name'] == name and protocol['metrics'] == [metric]
    assert protocol['dataset'] == 'coco' and protocol['depth'] == 50
    assert sorted(protocol['leaves']) == ['densecl', 'mocov2']
    for method, leaf in protocol['leaves'].items():
        assert leaf['convert'] == {'to': 'mmdet'}
        cfg = Config.fromfile(osp.join(REPO, leaf['config']))
        assert cfg.model.backbone.init_cfg == dict(type='Pretrained', prefix='backbone.',
                                                   checkpoint=f'{method}_mmdet.pth')
        assert cfg.val_evaluator.metric == metric
    assert {p['method']: p[f'{metric}_AP'] for p in protocol['published']} == published
