"""SoCo checkpoints (ours and the official layout) converted for mmdet's Mask
R-CNN with the pretrained FPN and 4conv-1fc box head, loaded through the
benchmark config's init_cfg, reproducing FPN maps and pooled head features."""
import argparse
import importlib.util
import os.path as osp
from collections import OrderedDict

import pytest
import torch

import crosscl_mm  # noqa: F401
from crosscl_mm.converters import convert, load_checkpoint_safely, read_pretrained_checkpoint
from crosscl_mm.registry import MODELS

from conftest import REPO

CONVERTER = osp.join(REPO, 'tools', 'model_converters', 'convert_pretrained.py')
BENCHMARK = osp.join(REPO, 'configs', 'benchmarks', 'mmdetection',
                     'mask-rcnn_r50-fpn-4conv1fc_syncbn-all_soco_ms-90k_coco.py')


def soco_r50():
    """R50-FPN with SoCo's box head at full width (what mmdet loads); small MLPs."""
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='SoCo',
        backbone=dict(type='mmdet.ResNet', depth=50, out_indices=(0, 1, 2, 3),
                      norm_cfg=dict(type='BN')),
        neck=dict(type='mmdet.FPN', in_channels=[256, 512, 1024, 2048], out_channels=256,
                  num_outs=4, norm_cfg=dict(type='BN'), init_cfg=None),
        head=dict(type='ConvFCBoxHead'),
        projector=dict(type='ProjectionMLP', in_channels=1024, hid_channels=32, out_channels=16),
        predictor=dict(type='ProjectionMLP', in_channels=16, hid_channels=32, out_channels=16)))
    model.init_weights()
    with torch.no_grad():  # non-trivial norms and statistics, so a mix-up would show
        for name, tensor in model.state_dict().items():
            if name.endswith(('running_mean', 'bias')):
                tensor.uniform_(-0.1, 0.1)
            elif name.endswith(('running_var',)) or (name.endswith('weight') and tensor.ndim == 1):
                tensor.uniform_(0.5, 1.5)
    return model.eval()


@pytest.fixture(scope='module')
def soco_checkpoint(module_tmp_path):
    model = soco_r50()
    path = str(module_tmp_path / 'epoch_400.pth')
    torch.save({'meta': {'epoch': 400}, 'state_dict': model.state_dict()}, path)
    return model, path


def official_layout(model):
    """The official checkpoint's names (SoCo_FPN.py:49-63), with its argparse options."""
    sd = OrderedDict()
    for key, value in model.state_dict().items():
        if key.startswith('backbone.'):
            sd['module.encoder.' + key[9:]] = value
            sd['module.encoder_k.' + key[9:]] = value
        elif key.startswith('neck.'):
            sd['module.' + key] = value
        elif key.startswith('head.'):
            rest = key[5:].replace('fc.', 'fc1.')
            for i in range(4):
                rest = rest.replace(f'convs.{i}.conv.', f'conv{i + 1}.')
                rest = rest.replace(f'convs.{i}.bn.', f'bn{i + 1}.')
            sd['module.head.' + rest] = value
            sd['module.head_k.' + rest] = value
        elif key.startswith(('projector.', 'predictor.')):
            sd['module.' + key] = value
    return {'opt': argparse.Namespace(arch='resnet50', model='SoCo_FPN', epochs=400),
            'model': sd, 'epoch': 400}


def mask_rcnn(checkpoint):
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(BENCHMARK)
    cfg.model.backbone.init_cfg.checkpoint = checkpoint
    cfg.model.neck.init_cfg[0].checkpoint = checkpoint
    cfg.model.roi_head.bbox_head.init_cfg[2].checkpoint = checkpoint
    with DefaultScope.overwrite_default_scope('mmdet'):
        detector = MMDET_MODELS.build(cfg.model)
        detector.init_weights()
    return detector.eval()


def converter_main(argv):
    """tools/model_converters/convert_pretrained.py's main, run in this process."""
    spec = importlib.util.spec_from_file_location('convert_pretrained', CONVERTER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(argv)


def test_mask_rcnn_loads_backbone_fpn_and_box_head_and_reproduces_them(soco_checkpoint,
                                                                       tmp_path, capsys):
    model, path = soco_checkpoint
    out = str(tmp_path / 'soco_mmdet.pth')
    assert converter_main([path, out, '--to', 'mmdet', '--with-fpn', '--with-box-head']) == 0
    stdout = capsys.readouterr().out
    print(stdout)
    assert 'with FPN, with box head' in stdout and 'classifier and regressor' in stdout
    converted = torch.load(out, map_location='cpu', weights_only=True)['state_dict']
    detector = mask_rcnn(out)
    state = detector.state_dict()
    pretrained_parts = ('backbone.', 'neck.', 'roi_head.bbox_head.shared_')
    expected = sorted(k for k in state if k.startswith(pretrained_parts))
    assert sorted(converted) == expected  # nothing missing, nothing extra
    assert any(k.startswith('neck.lateral_convs.0.bn.') for k in expected)  # P2 with its norm
    assert 'roi_head.bbox_head.shared_convs.3.bn.running_var' in expected
    for key, value in converted.items():
        assert torch.equal(state[key], value), key  # init_cfg loaded it
    print('loaded into Mask R-CNN:', {part: sum(k.startswith(part) for k in converted)
                                      for part in pretrained_parts})

    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        theirs = detector.neck(detector.backbone(x))
        ours = model.neck(model.backbone(x))
        for a, b in zip(theirs[:4], ours):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
        # The same boxes pooled by mmdet's RoIAlign of each level (1/stride) and by
        # SoCo's RoIAlign (fractions of the view times the map size), through both heads.
        boxes = torch.tensor([[10., 20., 70., 90.], [0., 0., 127., 127.], [50., 40., 120., 110.],
                              [100., 100., 125., 120.], [30., 5., 100., 60.]])
        images = torch.tensor([0, 1, 0, 1, 1])
        rois = torch.cat([images[:, None].float(), boxes], dim=1)
        extractor = detector.roi_head.bbox_roi_extractor
        head = detector.roi_head.bbox_head
        for level in range(4):
            pooled = extractor.roi_layers[level](theirs[level], rois)
            y = pooled
            for conv in head.shared_convs:
                y = conv(y)
            y = head.relu(head.shared_fcs[0](y.flatten(1)))
            ours_pooled = torch.cat([
                model._roi_align(ours[level][image:image + 1], (boxes[i] / 128).view(1, 1, 4))
                for i, image in enumerate(images.tolist())])
            torch.testing.assert_close(ours_pooled, pooled, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(model.head(ours_pooled), y, rtol=1e-5, atol=1e-5)


def test_official_layout_and_detectron2_names(soco_checkpoint, tmp_path):
    model, path = soco_checkpoint
    official = str(tmp_path / 'ckpt_epoch_400.pth')
    torch.save(official_layout(model), official)
    # Loaded safely (its argparse options included) and read as official SoCo.
    release = load_checkpoint_safely(official)
    assert read_pretrained_checkpoint(release).source == 'official SoCo'
    ckpt = load_checkpoint_safely(path)
    assert read_pretrained_checkpoint(ckpt).source == 'crosscl_mm SoCo'
    sa = convert(release, 'mmdet', with_fpn=True, with_box_head=True).state_dict
    sb = convert(ckpt, 'mmdet', with_fpn=True, with_box_head=True).state_dict
    assert list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)
    d2 = convert(ckpt, 'detectron2', with_fpn=True, with_box_head=True)
    names = d2.state_dict
    sd = model.state_dict()
    for d2_name, our_name in {'roi_heads.box_head.conv1.weight': 'head.convs.0.conv.weight',
                              'roi_heads.box_head.conv4.norm.running_var':
                                  'head.convs.3.bn.running_var',
                              'roi_heads.box_head.fc1.bias': 'head.fc.bias',
                              'backbone.fpn_lateral2.norm.weight':
                                  'neck.lateral_convs.0.bn.weight',
                              'backbone.fpn_output5.weight': 'neck.fpn_convs.3.conv.weight',
                              'res5.2.conv3.norm.bias': 'backbone.layer4.2.bn3.bias'}.items():
        assert torch.equal(names[d2_name], sd[our_name]), d2_name
    # Without --with-box-head the head is dropped and said so.
    plain = convert(ckpt, 'mmdet', with_fpn=True)
    assert not any(k.startswith('roi_head') for k in plain.state_dict)
    assert any('--with-box-head' in line for line in plain.not_pretrained)
