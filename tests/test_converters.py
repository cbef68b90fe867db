"""Checkpoint conversion: mmdet (backbone + FPN), detectron2, torchvision;
official-format input; refusal of junk and of pickles that would run code."""
import os
import os.path as osp
import pickle
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F

import crosscl_mm  # noqa: F401
from crosscl_mm.registry import MODELS

from conftest import REPO, python_cmd, run

CONVERTER = osp.join(REPO, 'tools', 'model_converters', 'convert_pretrained.py')


def r50_crosscl(fpn_norm=None):
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='CrossCL', queue_len=16, feat_dim=128,
        backbone=dict(type='mmdet.ResNet', depth=50, out_indices=(1, 2, 3),
                      norm_cfg=dict(type='BN'), zero_init_residual=False),
        neck=dict(type='GlobalProjectionNeck', in_channels=2048, hid_channels=2048,
                  out_channels=128),
        fpn=dict(type='TopDownFPN', in_channels=(512, 1024, 2048), out_channels=256,
                 norm_cfg=fpn_norm)))
    model.init_weights()
    # Make BN statistics non-trivial so a mix-up of norm tensors would show.
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith('running_mean'):
                buf.uniform_(-0.1, 0.1)
            elif name.endswith('running_var'):
                buf.uniform_(0.5, 1.5)
    return model.eval()


@pytest.fixture(scope='module')
def crosscl_checkpoint(module_tmp_path):
    model = r50_crosscl()
    path = str(module_tmp_path / 'epoch_1.pth')
    import numpy as np
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance('converter-test')
    hub.update_scalar('train/loss', np.float64(2.0))
    torch.save({'meta': {'epoch': 1, 'seed': np.int64(0)}, 'state_dict': model.state_dict(),
                'message_hub': hub.state_dict(), 'optimizer': {}}, path)
    return model, path


def mmdet_mask_rcnn():
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(osp.join(
        REPO, 'configs/benchmarks/mmdetection/mask-rcnn_r50-fpn_syncbn-all_crosscl-fpn_1x_coco.py'))
    for part in ('backbone', 'neck'):
        cfg.model[part].init_cfg = None
        cfg.model[part].norm_cfg = dict(type='BN')
    cfg.model.neck.norm_cfg = None  # standard R50-FPN neck (convs with bias)
    cfg.model.roi_head.bbox_head.norm_cfg = None
    cfg.model.roi_head.mask_head.norm_cfg = None
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MMDET_MODELS.build(cfg.model).eval()


def convert(src, dst, *args):
    return run(python_cmd(CONVERTER, src, dst, *args), check=False, timeout=600)


def test_mmdet_with_fpn_reproduces_c3_c5_p3_p4(crosscl_checkpoint, tmp_path):
    model, path = crosscl_checkpoint
    out = str(tmp_path / 'mmdet.pth')
    proc = convert(path, out, '--to', 'mmdet', '--with-fpn')
    assert proc.returncode == 0, proc.stderr
    assert 'exported' in proc.stdout and 'dropped' in proc.stdout
    converted = torch.load(out, map_location='cpu', weights_only=True)['state_dict']
    detector = mmdet_mask_rcnn()
    missing, unexpected = detector.load_state_dict(converted, strict=False)
    assert not unexpected
    assert not [k for k in missing if k.startswith('backbone.')]
    neck_missing = sorted(k for k in missing if k.startswith('neck.'))
    assert neck_missing == ['neck.fpn_convs.0.conv.bias', 'neck.fpn_convs.0.conv.weight',
                            'neck.fpn_convs.3.conv.bias', 'neck.fpn_convs.3.conv.weight',
                            'neck.lateral_convs.0.conv.bias', 'neck.lateral_convs.0.conv.weight']
    x = torch.randn(2, 3, 96, 128)
    with torch.no_grad():
        c2, c3, c4, c5 = detector.backbone(x)
        ours = model.backbone(x)
        for a, b in zip((c3, c4, c5), ours):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
        p2, p3, p4, p5, p6 = detector.neck((c2, c3, c4, c5))
        our_p3, our_p4 = model.fpn(ours)
        torch.testing.assert_close(p3, our_p3, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(p4, our_p4, rtol=1e-5, atol=1e-5)


def test_mmdet_pretrained_init_cfg_loads_backbone_and_neck(crosscl_checkpoint, tmp_path):
    from mmengine.runner.checkpoint import _load_checkpoint_with_prefix
    model, path = crosscl_checkpoint
    out = str(tmp_path / 'mmdet.pth')
    assert convert(path, out, '--to', 'mmdet', '--with-fpn').returncode == 0
    backbone = _load_checkpoint_with_prefix('backbone.', out, map_location='cpu')
    neck = _load_checkpoint_with_prefix('neck.', out, map_location='cpu')
    assert set(backbone) == {k[len('backbone.'):] for k in model.state_dict()
                             if k.startswith('backbone.')}
    torch.testing.assert_close(neck['lateral_convs.3.conv.weight'],
                               model.fpn.lateral_convs[2].conv.weight)
    torch.testing.assert_close(neck['fpn_convs.2.conv.bias'], model.fpn.fpn_convs[1].conv.bias)


def official_release_state(fpn_bn=False, seed=0):
    """A state dict in the official release's layout, built without our code:
    torchvision's ResNet-50 names under ``module.encoder_q.`` (and, with other
    values, ``module.encoder_k.``), the reference's FPN ``fpn_lateral{3,4,5}``
    and ``fpn_output{3,4}`` (``.0`` conv / ``.1`` BN pairs with --fpn-bn),
    its projection ``fc.0``/``fc.2`` and the queue (crosscl/models.py,
    crosscl/builder.py). Values are random, scaled so that activations stay
    of order one through 50 layers, with non-trivial BN statistics."""
    import torchvision
    g = torch.Generator().manual_seed(seed)

    def conv(*shape):
        fan_in = shape[1] * shape[2] * shape[3]
        return torch.randn(*shape, generator=g) * (2.0 / fan_in) ** 0.5

    def norm(prefix, channels):
        return {f'{prefix}weight': torch.rand(channels, generator=g) + 0.5,
                f'{prefix}bias': torch.randn(channels, generator=g) * 0.1,
                f'{prefix}running_mean': torch.randn(channels, generator=g) * 0.1,
                f'{prefix}running_var': torch.rand(channels, generator=g) + 0.5,
                f'{prefix}num_batches_tracked': torch.tensor(1000)}

    def encoder():
        sd = OrderedDict()
        for name, ref in torchvision.models.resnet50().state_dict().items():
            if name.startswith('fc.'):
                continue  # the release has its projection here instead
            if ref.dim() == 4:
                sd[name] = conv(*ref.shape)
            elif name.endswith('.weight'):  # BN: filled with its statistics below
                sd.update(norm(name[:-len('weight')], ref.shape[0]))
        sd['fc.0.weight'] = torch.randn(2048, 2048, generator=g) * 0.02
        sd['fc.0.bias'] = torch.zeros(2048)
        sd['fc.2.weight'] = torch.randn(128, 2048, generator=g) * 0.02
        sd['fc.2.bias'] = torch.zeros(128)
        convs = [(f'fpn_lateral{lvl}', (256, c, 1, 1))
                 for lvl, c in ((3, 512), (4, 1024), (5, 2048))]
        convs += [(f'fpn_output{lvl}', (256, 256, 3, 3)) for lvl in (3, 4)]
        for name, shape in convs:
            if fpn_bn:  # nn.Sequential(conv, norm)
                sd[f'{name}.0.weight'] = conv(*shape)
                sd.update(norm(f'{name}.1.', 256))
            else:
                sd[f'{name}.weight'] = conv(*shape)
                sd[f'{name}.bias'] = torch.randn(256, generator=g) * 0.1
        return sd

    state = OrderedDict()
    for prefix in ('module.encoder_q.', 'module.encoder_k.'):  # different values in each
        state.update((prefix + k, v) for k, v in encoder().items())
    state['module.queue'] = torch.randn(128, 16, generator=g)
    state['module.queue_ptr'] = torch.zeros(1, dtype=torch.long)
    return state


def test_official_release_converts_to_a_mask_rcnn_that_computes_its_features(tmp_path):
    """An official-format checkpoint, converted and loaded into mmdet's Mask
    R-CNN, gives C2-C5 equal to torchvision's ResNet-50 loaded with the
    release's tensors, and P3, P4 equal to the reference's FPN top-down pass
    (crosscl/models.py:282-297) written here from the same tensors."""
    import torchvision
    state = official_release_state()
    official = str(tmp_path / 'CrossCL_0200.pth')
    torch.save({'epoch': 200, 'arch': 'resnet50', 'state_dict': state, 'optimizer': {}}, official)
    out = str(tmp_path / 'mmdet.pth')
    proc = convert(official, out, '--to', 'mmdet', '--with-fpn')
    assert proc.returncode == 0, proc.stderr
    detector = mmdet_mask_rcnn()
    converted = torch.load(out, map_location='cpu', weights_only=True)['state_dict']
    missing, unexpected = detector.load_state_dict(converted, strict=False)
    assert not unexpected and not [k for k in missing if k.startswith('backbone.')]

    q = {k[len('module.encoder_q.'):]: v for k, v in state.items()
         if k.startswith('module.encoder_q.')}
    resnet = torchvision.models.resnet50()
    missing, unexpected = resnet.load_state_dict(
        {k: v for k, v in q.items() if k.startswith(('conv1.', 'bn1.', 'layer'))}, strict=False)
    assert sorted(missing) == ['fc.bias', 'fc.weight'] and not unexpected
    resnet.eval()

    def lateral(level, x):
        return F.conv2d(x, q[f'fpn_lateral{level}.weight'], q[f'fpn_lateral{level}.bias'])

    def output(level, x):
        return F.conv2d(x, q[f'fpn_output{level}.weight'], q[f'fpn_output{level}.bias'], padding=1)

    x = torch.randn(2, 3, 96, 128, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        c2 = resnet.layer1(resnet.maxpool(resnet.relu(resnet.bn1(resnet.conv1(x)))))
        c3 = resnet.layer2(c2)
        c4 = resnet.layer3(c3)
        c5 = resnet.layer4(c4)
        merged = lateral(4, c4) + F.interpolate(lateral(5, c5), scale_factor=2.0, mode='nearest')
        p4 = output(4, merged)
        merged = lateral(3, c3) + F.interpolate(merged, scale_factor=2.0, mode='nearest')
        p3 = output(3, merged)

        feats = detector.backbone(x)
        for name, got, want in zip(('C2', 'C3', 'C4', 'C5'), feats, (c2, c3, c4, c5)):
            assert want.abs().mean() > 0.1  # activations stay of order one
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4,
                                       msg=lambda m, name=name: f'{name}: {m}')
        pyramid = detector.neck(feats)
        torch.testing.assert_close(pyramid[1], p3, rtol=1e-4, atol=1e-4, msg=lambda m: f'P3: {m}')
        torch.testing.assert_close(pyramid[2], p4, rtol=1e-4, atol=1e-4, msg=lambda m: f'P4: {m}')


def test_official_fpn_bn_variant(tmp_path):
    state = official_release_state(fpn_bn=True)
    official = str(tmp_path / 'fpnbn.pth')
    torch.save({'state_dict': state}, official)
    out = str(tmp_path / 'out.pth')
    proc = convert(official, out, '--to', 'mmdet', '--with-fpn')
    assert proc.returncode == 0, proc.stderr
    sd = torch.load(out, weights_only=True)['state_dict']
    assert 'neck.lateral_convs.3.conv.bias' not in sd
    assert torch.equal(sd['neck.lateral_convs.3.conv.weight'],
                       state['module.encoder_q.fpn_lateral5.0.weight'])
    assert torch.equal(sd['neck.lateral_convs.3.bn.running_var'],
                       state['module.encoder_q.fpn_lateral5.1.running_var'])
    assert torch.equal(sd['neck.fpn_convs.1.bn.weight'],
                       state['module.encoder_q.fpn_output3.1.weight'])
    d2 = str(tmp_path / 'out.pkl')
    assert convert(official, d2, '--to', 'detectron2', '--with-fpn').returncode == 0
    with open(d2, 'rb') as f:
        names = pickle.load(f)['model']
    assert (names['backbone.fpn_lateral5.norm.running_mean']
            == state['module.encoder_q.fpn_lateral5.1.running_mean'].numpy()).all()
    assert (names['backbone.fpn_output3.weight']
            == state['module.encoder_q.fpn_output3.0.weight'].numpy()).all()


def test_detectron2_pickle_names_and_shapes(crosscl_checkpoint, tmp_path):
    model, path = crosscl_checkpoint
    out = str(tmp_path / 'd2.pkl')
    assert convert(path, out, '--to', 'detectron2', '--with-fpn').returncode == 0
    with open(out, 'rb') as f:
        obj = pickle.load(f)
    assert obj['matching_heuristics'] is True
    names = obj['model']
    sd = model.state_dict()
    expected = {
        'stem.conv1.weight': 'backbone.conv1.weight',
        'stem.conv1.norm.running_var': 'backbone.bn1.running_var',
        'res2.0.conv1.norm.weight': 'backbone.layer1.0.bn1.weight',
        'res2.0.shortcut.weight': 'backbone.layer1.0.downsample.0.weight',
        'res2.0.shortcut.norm.bias': 'backbone.layer1.0.downsample.1.bias',
        'res5.2.conv3.weight': 'backbone.layer4.2.conv3.weight',
        'backbone.fpn_lateral3.weight': 'fpn.lateral_convs.0.conv.weight',
        'backbone.fpn_lateral5.bias': 'fpn.lateral_convs.2.conv.bias',
        'backbone.fpn_output4.weight': 'fpn.fpn_convs.1.conv.weight',
    }
    for d2_name, our_name in expected.items():
        assert names[d2_name].shape == tuple(sd[our_name].shape)
        assert (names[d2_name] == sd[our_name].numpy()).all(), d2_name
    assert len([n for n in names if not n.startswith('backbone.fpn')]) == \
        len([k for k in sd if k.startswith('backbone.')])
    assert not any('fc' in n or 'mlp' in n for n in names)


def test_torchvision_resnet50_loads_and_matches(crosscl_checkpoint, tmp_path):
    import torchvision
    model, path = crosscl_checkpoint
    out = str(tmp_path / 'tv.pth')
    assert convert(path, out, '--to', 'torchvision').returncode == 0
    tv = torchvision.models.resnet50()
    missing, unexpected = tv.load_state_dict(torch.load(out, weights_only=True), strict=False)
    assert sorted(missing) == ['fc.bias', 'fc.weight'] and not unexpected
    tv.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        h = tv.maxpool(tv.relu(tv.bn1(tv.conv1(x))))
        c5 = tv.layer4(tv.layer3(tv.layer2(tv.layer1(h))))
        torch.testing.assert_close(c5, model.backbone(x)[-1], rtol=1e-5, atol=1e-5)


def test_junk_and_malicious_inputs_are_refused(tmp_path):
    text = tmp_path / 'notes.pth'
    text.write_text('this is not a checkpoint')
    out = tmp_path / 'out.pth'
    proc = convert(str(text), str(out), '--to', 'mmdet')
    assert proc.returncode == 2 and 'not a PyTorch checkpoint' in proc.stderr
    assert not out.exists()

    marker = tmp_path / 'PWNED'

    class Evil:
        def __reduce__(self):
            return (os.system, (f'touch {marker}',))

    evil = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'backbone.conv1.weight': torch.zeros(1)}, 'x': Evil()}, evil)
    proc = convert(str(evil), str(out), '--to', 'mmdet')
    assert proc.returncode == 2 and 'refused' in proc.stderr
    assert not marker.exists() and not out.exists()
    assert not list(tmp_path.glob('*.partial'))

    other = tmp_path / 'other.pth'
    torch.save({'state_dict': {'encoder.weight': torch.zeros(2)}}, other)
    proc = convert(str(other), str(out), '--to', 'mmdet')
    assert proc.returncode == 2 and 'not a checkpoint of a known pretraining' in proc.stderr
    assert not out.exists()


# Minutes on 2 cores; every protocol's training test (test_benchmark_configs_train,
# test_*_protocols*) converts, fine-tunes and evaluates the same way in the default suite.
@pytest.mark.slow
def test_mask_rcnn_finetunes_and_evaluates_on_generated_data(crosscl_checkpoint, tmp_path):
    """Convert, then fine-tune mmdet's Mask R-CNN R50-FPN from it on the
    generated shapes-on-photos COCO data, and evaluate with pycocotools."""
    import glob
    import json
    from mmengine.config import Config
    from crosscl_mm.datasets.shapes_on_photos import make_shapes_on_photos
    from crosscl_mm.utils.sample_photos import skimage_photo_paths

    _, path = crosscl_checkpoint
    converted = str(tmp_path / 'crosscl_mmdet.pth')
    assert convert(path, converted, '--to', 'mmdet', '--with-fpn').returncode == 0
    data = str(tmp_path / 'shapes')
    anns = make_shapes_on_photos(data, skimage_photo_paths()[:4], num_train=4, num_val=2)
    with open(anns['train']) as f:
        train = json.load(f)
    assert len(train['images']) == 4 and len(train['annotations']) >= 4
    assert all(a['area'] > 0 and len(a['segmentation'][0]) >= 6 for a in train['annotations'])

    cfg = Config.fromfile(osp.join(REPO, 'configs/demo/mask-rcnn_r50-fpn_demo_shapes.py'))
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        loader.dataset.data_root = data + '/'
        loader.num_workers = 0
        loader.persistent_workers = False
    cfg.val_evaluator.ann_file = cfg.test_evaluator.ann_file = anns['val']
    cfg.train_cfg.max_epochs = cfg.train_cfg.val_interval = 1
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True)]
    # Two iterations of training score every box low: keep them all, so the
    # COCO evaluation has detections to score.
    cfg.model.test_cfg.rcnn.score_thr = 0.0
    cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=converted, prefix='backbone.')
    cfg.model.neck.init_cfg = [dict(type='Xavier', layer='Conv2d', distribution='uniform'),
                               dict(type='Pretrained', checkpoint=converted, prefix='neck.')]
    cfg_path = str(tmp_path / 'finetune.py')
    cfg.dump(cfg_path)
    work_dir = str(tmp_path / 'finetune')
    proc = run(python_cmd('tools/train.py', cfg_path, '--work-dir', work_dir), timeout=1200)
    log = '\n'.join(open(p).read() for p in glob.glob(osp.join(work_dir, '*', '*.log')))
    for name in ('backbone.layer4.2.conv3.weight', 'neck.lateral_convs.3.conv.weight',
                 'neck.fpn_convs.1.conv.weight'):
        block = log[log.index(name + ' - torch.Size'):][:400]
        assert 'PretrainedInit: load from ' + converted in block, block
    assert 'Epoch(train) [1][2/2]' in log
    assert 'Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all' in proc.stdout  # pycocotools
    from crosscl_mm.utils.work_dir import read_scalars
    final = [r for r in read_scalars(work_dir) if 'coco/bbox_mAP' in r]
    assert final and 0 <= final[-1]['coco/bbox_mAP'] <= 1 and 'coco/segm_mAP' in final[-1]
