"""DetCo's COCO protocols train and evaluate on the CPU: each leaf config,
as written, in one process (SyncBN as BN) on the generated shapes data at
96x64, 2 iterations, 4 RoIs and detections (every score kept), from a
converted checkpoint built in the released layout of its method (DetCo: a
torchvision ResNet-50 `state_dict`, no prefix; MoCo v2: `module.encoder_q.`
with its MLP head and queue; RegionCL-M: OpenSelfSup's `encoder_q.0.` =
`backbone.`, MLP, key encoder and queue), with Precise BN
before the evaluation and the real CocoMetric. Only data, size, length and
the norm's sync change; the protocol is the config's.

One leaf per detector, and RegionCL-M's RetinaNet 90k leaf (detectron2
v0.5's decay), run by default; the other 20 are slow."""
import glob
import os.path as osp
from collections import OrderedDict

import pytest
import torch

from crosscl_mm.utils.work_dir import read_scalars

CONFIGS = 'configs/benchmarks/mmdetection'
# Norm layers that train: ResNet-50 has 53 BNs, C4's res5 head 10 of them
# plus the extra norm; DetCo's FPN has SyncBN in its 4 laterals and 4
# outputs and none in the heads; RetinaNet's FPN in 3 + 3, none in P6/P7.
BN_LAYERS = {'c4': 53 + 1, 'fpn': 53 + 8, 'retina': 53 + 6}


def kind(config):
    return 'c4' if '-c4_' in config else 'retina' if config.startswith('retinanet') else 'fpn'


@pytest.fixture(scope='module')
def released(module_tmp_path):
    """{method: converted mmdet checkpoint path} from files in each release's layout."""
    from crosscl_mm.converters.encoder_weights import convert, serialise
    from mmdet.models.backbones import ResNet
    torch.manual_seed(0)
    resnet = ResNet(depth=50)
    resnet.init_weights()
    tv = OrderedDict((k, v.clone()) for k, v in resnet.state_dict().items())
    tv['fc.weight'], tv['fc.bias'] = torch.randn(1000, 2048), torch.zeros(1000)
    moco = OrderedDict(('module.encoder_q.' + k, v) for k, v in tv.items()
                       if not k.startswith('fc.'))
    moco.update({'module.encoder_q.fc.0.weight': torch.randn(2048, 2048),
                 'module.encoder_q.fc.0.bias': torch.zeros(2048),
                 'module.encoder_q.fc.2.weight': torch.randn(128, 2048),
                 'module.encoder_q.fc.2.bias': torch.zeros(128),
                 'module.queue': torch.randn(128, 64), 'module.queue_ptr': torch.zeros(1)})
    layouts = {'detco': {'state_dict': tv},
               'mocov2': {'epoch': 200, 'arch': 'resnet50', 'state_dict': moco}}
    # RegionCL-M's OpenSelfSup layout (encoder_q.0 = backbone, MLP, key encoder, queue)
    from test_released_checkpoints import regioncl_official
    backbone = OrderedDict((k, v) for k, v in tv.items() if not k.startswith('fc.'))
    layouts['regioncl-m'] = regioncl_official(backbone, backbone)
    paths = {}
    for method, ckpt in layouts.items():
        paths[method] = str(module_tmp_path / f'{method}_mmdet.pth')
        with open(paths[method], 'wb') as f:
            serialise(convert(ckpt, 'mmdet'), 'mmdet', 'test', f)
    return paths, tv


def no_sync(node):
    if isinstance(node, dict):
        return {k: 'BN' if k == 'type' and v == 'SyncBN' else no_sync(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return type(node)(no_sync(v) for v in node)
    return node


def tiny_cfg(config, shapes_data, ckpt, work_dir):
    from mmengine.config import Config
    import crosscl_mm  # noqa: F401
    cfg = Config.fromfile(osp.join(CONFIGS, config))
    assert cfg.model.backbone.init_cfg.checkpoint.endswith('_mmdet.pth')
    root = shapes_data['coco'] + '/'
    data = dict(data_root=root, metainfo=dict(classes=('circle', 'rectangle', 'triangle')),
                data_prefix=dict(img='images/'))
    options = {
        'train_dataloader.dataset': dict(data, ann_file='train.json'),
        'val_dataloader.dataset': dict(data, ann_file='val.json'),
        'val_evaluator.ann_file': shapes_data['val'],
        'train_dataloader.dataset.pipeline.2.scales': [(96, 64)],
        'val_dataloader.dataset.pipeline.1.scale': (96, 64),
        'train_dataloader.batch_size': 2, 'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'val_dataloader.num_workers': 0, 'val_dataloader.persistent_workers': False,
        'train_cfg.max_iters': 2, 'train_cfg.val_interval': 2,
        'custom_hooks.0.num_iters': 2, 'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint.save_last': False,
        'model.backbone.init_cfg.checkpoint': ckpt,
    }
    if kind(config) == 'retina':
        options.update({'model.bbox_head.num_classes': 3, 'model.test_cfg.nms_pre': 100,
                        'model.test_cfg.score_thr': 0.0, 'model.test_cfg.max_per_img': 20})
    else:
        options.update({
            'model.roi_head.bbox_head.num_classes': 3, 'model.roi_head.mask_head.num_classes': 3,
            'model.train_cfg.rpn_proposal.nms_pre': 200,
            'model.train_cfg.rpn_proposal.max_per_img': 50,
            # the C4 model's res5 head costs about 1 GFLOP per RoI
            'model.train_cfg.rcnn.sampler.num': 4, 'model.test_cfg.rpn.nms_pre': 200,
            'model.test_cfg.rpn.max_per_img': 4, 'model.test_cfg.rcnn.score_thr': 0.0,
            'model.test_cfg.rcnn.max_per_img': 4})
    if kind(config) == 'c4':
        options['model.roi_head.shared_head.init_cfg.checkpoint'] = ckpt
    cfg.merge_from_dict(options)
    cfg.model = no_sync(cfg.model.to_dict())  # one process without a group: SyncBN -> BN
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=0)
    cfg.experiment_name = f'detco_protocol_{osp.basename(work_dir)}'
    return cfg


def check_run(config, shapes_data, released, tmp_path):
    from mmengine.runner import Runner
    paths, tv = released
    method = next(m for m in ('mocov2', 'regioncl-m', 'detco') if f'_{m}_' in config)
    work_dir = str(tmp_path / 'work')
    cfg = tiny_cfg(config, shapes_data, paths[method], work_dir)
    runner = Runner.from_cfg(cfg)
    runner.train()
    log = '\n'.join(open(p).read() for p in glob.glob(osp.join(work_dir, '*', '*.log')))
    assert (f'DetPreciseBNHook: re-estimated the statistics of {BN_LAYERS[kind(config)]} '
            'BatchNorm layers over 2 training batches per process (after iteration 2)') in log
    model = runner.model
    # The pretrained tensors arrived (2 steps at warmup lr 2e-5 move them by far less).
    torch.testing.assert_close(model.backbone.layer1[0].conv1.weight,
                               tv['layer1.0.conv1.weight'], rtol=0, atol=1e-3)
    if kind(config) == 'c4':
        torch.testing.assert_close(model.roi_head.shared_head.layer4[2].conv3.weight,
                                   tv['layer4.2.conv3.weight'], rtol=0, atol=1e-3)
    # detectron2 v0.3's decay: norms 0, other biases 1e-4, weights 1e-4
    # (v0.5, RegionCL-M's leaves: norm weights 0, every bias and weight 1e-4).
    decays = {g['weight_decay'] for g in runner.optim_wrapper.optimizer.param_groups}
    assert decays == {0.0, 1e-4}
    final = [r for r in read_scalars(work_dir) if 'coco/bbox_mAP' in r][-1]
    keys = ['coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/bbox_mAP_75']
    if kind(config) != 'retina':
        keys += ['coco/segm_mAP', 'coco/segm_mAP_50']
    else:
        assert 'coco/segm_mAP' not in final
    for key in keys:
        assert 0 <= final[key] <= 1, (key, final)
    return runner


LEAVES = [f'{det}_{m}_detco-ms-{k}_coco.py'
          for det in ('mask-rcnn_r50-c4_syncbn-extra-norm', 'mask-rcnn_r50-fpn_syncbn',
                      'retinanet_r50-fpn-p6p7_syncbn')
          for m in ('detco', 'mocov2') for k in ('12k', '90k', '180k')] + [
              f'{det}_regioncl-m_detco-ms-{k}_coco.py'
              for det in ('mask-rcnn_r50-c4_syncbn-extra-norm', 'mask-rcnn_r50-fpn_syncbn',
                          'retinanet_r50-fpn-p6p7_syncbn') for k in ('90k', '180k')]
DEFAULT = ['mask-rcnn_r50-c4_syncbn-extra-norm_detco_detco-ms-12k_coco.py',
           'mask-rcnn_r50-fpn_syncbn_mocov2_detco-ms-90k_coco.py',
           'retinanet_r50-fpn-p6p7_syncbn_detco_detco-ms-180k_coco.py',
           'retinanet_r50-fpn-p6p7_syncbn_regioncl-m_detco-ms-90k_coco.py']


def test_every_leaf_is_listed():
    on_disk = {osp.basename(p) for p in glob.glob(osp.join(CONFIGS, '*_detco-ms-*_coco.py'))}
    assert on_disk == set(LEAVES) and set(DEFAULT) <= on_disk


@pytest.mark.parametrize('config', DEFAULT)
def test_detco_protocol_trains_and_evaluates(config, shapes_data, released, tmp_path, one_thread):
    check_run(config, shapes_data, released, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize('config', [c for c in LEAVES if c not in DEFAULT])
def test_other_detco_leaves_train_and_evaluate(config, shapes_data, released, tmp_path,
                                               one_thread):
    check_run(config, shapes_data, released, tmp_path)


def test_protocol_files_name_the_leaves_and_published_rows():
    """configs/benchmarks/protocols/detco_*.yml: one per protocol, each naming
    its DetCo and MoCo v2 leaves (which exist and start from that method's
    converted file) and the two published rows with COCO result keys only."""
    import yaml
    from conftest import REPO
    files = sorted(glob.glob(osp.join(REPO, 'configs', 'benchmarks', 'protocols', 'detco_*.yml')))
    assert len(files) == 9
    named = set()
    for path in files:
        with open(path) as f:
            proto = yaml.safe_load(f)
        assert proto['name'] == osp.splitext(osp.basename(path))[0]
        assert proto['dataset'] == 'coco' and proto['depth'] == 50 and proto['trials'] == 1
        segm = proto['metrics'] == ['bbox', 'segm']
        assert segm != ('retinanet' in proto['name'])
        regioncl = '_12k_' not in proto['name']  # RegionCL-M ran the 1x and 2x ones
        methods = ['detco', 'mocov2'] + (['regioncl-m'] if regioncl else [])
        assert list(proto['leaves']) == methods
        for method, leaf in proto['leaves'].items():
            assert leaf['convert'] == {'to': 'mmdet'}
            config = osp.relpath(leaf['config'], CONFIGS)
            assert config in LEAVES and f'_{method}_' in config
            assert open(osp.join(REPO, leaf['config'])).read().count(f"'{method}_mmdet.pth'") == 1
            named.add(config)
        keys = {'bbox_AP', 'bbox_AP50', 'bbox_AP75'} | (
            {'segm_AP', 'segm_AP50', 'segm_AP75'} if segm else set())
        assert [row['method'] for row in proto['published']] == methods
        for row in proto['published']:
            if row['method'] == 'regioncl-m':  # RegionCL's README: AP only
                assert set(row) - {'method', 'source'} == {k for k in keys if k.endswith('_AP')}
                assert row['source'].startswith('Annbless/RegionCL README.md:')
                assert '61bbcab' in row['source'] and 'detectron2 0.5' in row['source']
                continue
            assert set(row) - {'method', 'source'} == keys
            assert 'DetCo paper' in row['source'] and all(
                0 < row[k] < 100 for k in keys)
    assert named == set(LEAVES)
