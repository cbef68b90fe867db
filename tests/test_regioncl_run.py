"""RegionCL end to end: the real configs (made tiny on the command line)
through ``tools/dist_train.sh CONFIG 2`` on the CPU with checkpoint and
resume (slow), and our R50 and R101 checkpoints converted and loaded into
mmdet's Faster R-CNN C4 of the VOC protocol, backbone and res5 head."""
import glob
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config

import crosscl_mm  # noqa: F401
from crosscl_mm.utils.work_dir import read_scalars

from conftest import REPO, free_port, python_cmd, run

VOC_C4_BASE = osp.join(REPO, 'configs', 'benchmarks', 'mmdetection', '_base_',
                       'faster-rcnn_r50-c4_syncbn-extra-norm_ms-24k_voc0712.py')
TERMS = dict(m=('loss_instance', 'loss_region'), d=('loss_global', 'loss_dense', 'loss_region'))
CONFIGS = dict(m='regioncl-m_r50_200e_in1k.py', d='regioncl-d_r50_200e_in1k.py')


def tiny_options(variant, photo_dir, *extra):
    """ResNet-18 at 96 px with boxes of 1-2 cells, narrow heads, a short
    queue, 2 images per process; RegionCL-D in bfloat16 autocast (its
    configured mixed precision, in the CPU's dtype)."""
    options = [f'train_dataloader.dataset.data_root={photo_dir}', 'train_dataloader.batch_size=2',
               'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
               'train_dataloader.dataset.pipeline.1.sizes=[96,96]', 'model.backbone.depth=18',
               'model.neck.in_channels=512', 'model.neck.hid_channels=64', 'model.queue_len=64',
               'model.swap.min_cells=1', 'model.swap.max_cells=2', 'train_cfg.max_epochs=1',
               'default_hooks.logger.interval=1', 'default_hooks.checkpoint.interval=1',
               'env_cfg.cudnn_benchmark=False']
    if variant == 'd':
        options += ['model.dense_neck.in_channels=512', 'model.dense_neck.hid_channels=64',
                    'optim_wrapper.dtype=auto']
    return ['--cfg-options', *options, *extra]


def dist_train(config, work_dir, *args):
    env = dict(PORT=str(free_port()), PYTHON=python_cmd()[0], OMP_NUM_THREADS='1')
    return run(['bash', 'tools/dist_train.sh', osp.join(REPO, 'configs', config), '2',
                '--work-dir', work_dir, *args], env=env, timeout=1500)


@pytest.mark.slow
@pytest.mark.parametrize('variant', ['m', 'd'])
def test_two_cpu_processes_train_checkpoint_then_resume(variant, photo_dir, tmp_path):
    work_dir = str(tmp_path / variant)
    dist_train(CONFIGS[variant], work_dir, *tiny_options(variant, photo_dir))
    log = '\n'.join(open(p).read() for p in glob.glob(osp.join(work_dir, '*', '*.log')))
    assert 'Distributed training: True' in log and 'GPU number: 2' in log, log[:3000]
    records = [r for r in read_scalars(work_dir) if 'loss_region' in r]
    assert len(records) == 2  # 8 photos / (2 processes x 2 images)
    for record in records:
        for name in TERMS[variant]:
            assert math.isfinite(record[name]) and record[name] > 0, (name, record)
            assert 0 <= record[name.replace('loss_', 'acc_')] <= 100
        assert record['loss'] == pytest.approx(sum(record[n] for n in TERMS[variant]), rel=1e-4)
    state = torch.load(osp.join(work_dir, 'epoch_1.pth'), map_location='cpu',
                       weights_only=False)['state_dict']
    assert int(state['instance_queue.ptr']) == 8  # 2 iterations x 4 keys of both processes

    dist_train(CONFIGS[variant], work_dir, '--resume',
               *tiny_options(variant, photo_dir, 'train_cfg.max_epochs=2'))
    log = '\n'.join(open(p).read() for p in sorted(glob.glob(osp.join(work_dir, '*', '*.log'))))
    assert 'resumed epoch: 1' in log and 'Epoch(train) [2][2/2]' in log
    second = torch.load(osp.join(work_dir, 'epoch_2.pth'), map_location='cpu',
                        weights_only=False)['state_dict']
    assert int(second['instance_queue.ptr']) == 16
    assert int(second['momentum_encoder.steps']) == 4
    if variant == 'd':
        assert int(second['dense_queue.ptr']) == 16


# ---- conversion ------------------------------------------------------------

def regioncl_checkpoint(config, depth, path):
    """Our model from the real config (narrow heads and queue keep it light),
    with non-trivial BN statistics so that a mix-up of norm tensors shows."""
    from crosscl_mm.registry import MODELS
    torch.manual_seed(0)
    cfg = Config.fromfile(osp.join(REPO, 'configs', config)).model.to_dict()
    cfg['backbone'].update(depth=depth, init_cfg=None)
    cfg.update(queue_len=8, neck=dict(cfg['neck'], hid_channels=8, init_cfg=None))
    if 'dense_neck' in cfg:
        cfg['dense_neck'].update(hid_channels=8, init_cfg=None)
    model = MODELS.build(cfg)
    with torch.no_grad():
        for name, buf in model.backbone.named_buffers():
            if name.endswith('running_mean'):
                buf.uniform_(-0.1, 0.1)
            elif name.endswith('running_var'):
                buf.uniform_(0.5, 1.5)
    torch.save({'meta': {'epoch': 200}, 'state_dict': model.state_dict()}, path)
    return model


def voc_c4_detector(depth, converted):
    """Faster R-CNN C4 of the VOC protocol (plain BN for one process), its
    backbone and res5 head initialised from the converted file as the
    protocol's leaf configs do (``Pretrained``, prefix ``backbone.``)."""
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmdet.utils import register_all_modules
    from mmengine.registry import DefaultScope
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(VOC_C4_BASE)
    pretrained = dict(type='Pretrained', checkpoint=converted, prefix='backbone.')
    cfg.model.backbone.update(depth=depth, norm_cfg=dict(type='BN'), init_cfg=pretrained)
    cfg.model.roi_head.shared_head.update(depth=depth, norm_cfg=dict(type='BN'),
                                          init_cfg=pretrained)
    with DefaultScope.overwrite_default_scope('mmdet'):
        detector = MMDET_MODELS.build(cfg.model)
    detector.init_weights()
    return detector.eval()


@pytest.mark.parametrize('config,depth', [('regioncl-m_r50_200e_in1k.py', 50),
                                          ('regioncl-d_r101_200e_in1k.py', 101)])
def test_converted_checkpoint_initialises_mmdet_faster_rcnn_c4(config, depth, tmp_path):
    from crosscl_mm.converters import convert, read_pretrained_checkpoint
    src = str(tmp_path / 'epoch_200.pth')
    model = regioncl_checkpoint(config, depth, src)
    ckpt = torch.load(src, map_location='cpu', weights_only=True)
    weights = read_pretrained_checkpoint(ckpt, src)
    assert weights.source == ('crosscl_mm RegionCL-M' if 'regioncl-m' in config
                              else 'crosscl_mm RegionCL-D')
    conversion = convert(ckpt, 'mmdet', path=src)
    ours = model.backbone.state_dict()
    assert set(conversion.state_dict) == {'backbone.' + k for k in ours}  # the ResNet only
    out = str(tmp_path / 'regioncl_mmdet.pth')
    torch.save({'state_dict': conversion.state_dict}, out)

    detector = voc_c4_detector(depth, out)
    # Every tensor of the C4 backbone (stem, layer1-3) and of the res5 head (layer4) is ours:
    # nothing was left to the detector's own init.
    loaded = {**{k: v for k, v in detector.backbone.state_dict().items()},
              **{k: v for k, v in detector.roi_head.shared_head.state_dict().items()
                 if k.startswith('layer4.')}}
    assert set(loaded) == set(ours)
    for name, value in ours.items():
        assert torch.equal(loaded[name], value), name
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        model.backbone.eval()
        c4 = detector.backbone(x)[-1]
        torch.testing.assert_close(detector.roi_head.shared_head(c4), model.backbone(x)[-1],
                                   rtol=1e-4, atol=1e-4)


def test_the_released_layouts_are_not_taken_for_ours():
    """The official RegionCL-M file (encoder_q.0.*, backbone.*, a bare queue) and
    the third-party RegionCL-D file (module.encoder_q.*, module.queue) have no
    instance_queue.*: our reader never claims them."""
    from crosscl_mm.converters.regioncl import _is_regioncl_mm
    t = torch.zeros(1)
    official = {'encoder_q.0.conv1.weight': t, 'backbone.conv1.weight': t, 'queue': t,
                'queue_ptr': t, 'encoder_q.1.mlp.0.weight': t}
    third_party = {'module.encoder_q.conv1.weight': t, 'module.encoder_q.dense_head.0.weight': t,
                   'module.queue': t, 'module.queue_dense': t}
    ours = {'backbone.conv1.weight': t, 'instance_queue.keys': t, 'neck.mlp.0.weight': t}
    assert not _is_regioncl_mm(official) and not _is_regioncl_mm(third_party)
    assert _is_regioncl_mm(ours)
