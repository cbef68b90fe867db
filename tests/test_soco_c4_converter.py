"""SoCo-C4 checkpoints (ours and the official layout) converted for C4
detectors: into mmdet's Mask R-CNN R50-C4 (mmdet's own
``_base_/models/mask-rcnn_r50-caffe-c4.py``, PyTorch-style strides) with no
missing backbone or shared-head tensor and the same C4 and res5 outputs as a
forward computed here from the checkpoint's tensors; and into detectron2's C4
names (the official converter's renaming, converter_detectron2/
convert_detectron2_C4.py:24-42, with res5 under roi_heads)."""
import argparse
import os.path as osp
import pickle
import sys

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config

import crosscl_mm  # noqa: F401
from crosscl_mm.registry import MODELS

from conftest import REPO
from test_soco_c4 import off_c4, off_layer, official_state

sys.path.insert(0, osp.join(REPO, 'tools', 'model_converters'))
import convert_pretrained  # noqa: E402


def eval_bn(x, S, p):
    return F.batch_norm(x, S[p + 'running_mean'], S[p + 'running_var'], S[p + 'weight'],
                        S[p + 'bias'], False, 0.0, 1e-5)


@pytest.fixture(scope='module')
def soco_c4_state():
    """A full-width SoCo-C4 (R50 stages 1-3, res5 head; small MLPs) with
    random weights and BN statistics, so that every tensor matters."""
    torch.manual_seed(0)
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'soco_r50c4_400e_in1k.py'))
    cfg.model.projector.hid_channels = cfg.model.predictor.hid_channels = 16
    from mmengine.registry import DefaultScope
    # Built in our scope whatever scope an earlier test left current.
    with DefaultScope.overwrite_default_scope('crosscl_mm'):
        model = MODELS.build(cfg.model)
    model.init_weights()
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith(('running_mean', 'bias')):
                t.copy_(torch.randn_like(t) * 0.1)
            elif name.endswith(('running_var', 'bn3.weight', 'downsample.1.weight')):
                t.copy_(torch.rand_like(t) + 0.5)
    return {k: v.clone() for k, v in model.state_dict().items()}


def mask_rcnn_r50_c4(tmp_path):
    """mmdet's Mask R-CNN R50-C4 model config, PyTorch-style (stride on the
    3x3 conv, as SoCo pretrains) and without its Caffe init."""
    path = tmp_path / 'mask_rcnn_r50_c4.py'
    path.write_text(
        "_base_ = 'mmdet::_base_/models/mask-rcnn_r50-caffe-c4.py'\n"
        "model = dict(backbone=dict(style='pytorch', init_cfg=None),\n"
        "             roi_head=dict(shared_head=dict(style='pytorch')))\n")
    from mmdet.registry import MODELS as DET_MODELS
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):
        return DET_MODELS.build(Config.fromfile(str(path)).model)


def test_soco_c4_checkpoint_loads_into_mask_rcnn_r50_c4(soco_c4_state, tmp_path):
    src, dst = str(tmp_path / 'epoch_400.pth'), str(tmp_path / 'soco_c4_mmdet.pth')
    torch.save({'state_dict': soco_c4_state, 'meta': {'epoch': 400}}, src)
    assert convert_pretrained.main([src, dst, '--to', 'mmdet']) == 0
    converted = torch.load(dst, map_location='cpu', weights_only=True)['state_dict']
    detector = mask_rcnn_r50_c4(tmp_path)
    missing, unexpected = detector.load_state_dict(converted, strict=False)
    assert unexpected == []
    assert [k for k in missing if k.startswith(('backbone.', 'roi_head.shared_head.'))] == []
    assert any(k.startswith('roi_head.bbox_head.') for k in missing)  # not pretrained
    assert len(converted) == sum(k.startswith(('backbone.', 'head.layer4.'))
                                 for k in soco_c4_state)

    # The detector's C4 and res5 head compute what the pretrained tensors define.
    detector.eval()
    x = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    rois = torch.randn(3, 1024, 14, 14, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        (c4,) = detector.backbone(x)
        res5 = detector.roi_head.shared_head(rois)
        ref_c4 = off_c4(x, soco_c4_state, 'backbone.', bn=eval_bn)
        ref_res5 = off_layer(rois, soco_c4_state, 'head.', 4, bn=eval_bn)
    assert c4.shape == (1, 1024, 4, 6) and res5.shape == (3, 2048, 7, 7)
    torch.testing.assert_close(c4, ref_c4, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(res5, ref_res5, rtol=1e-4, atol=1e-4)

    # --no-c4: the plain ResNet layout (layer4 in the backbone) for FPN detectors.
    plain = str(tmp_path / 'plain.pth')
    assert convert_pretrained.main([src, plain, '--to', 'mmdet', '--no-c4']) == 0
    keys = torch.load(plain, map_location='cpu', weights_only=True)['state_dict']
    assert any(k.startswith('backbone.layer4.') for k in keys)
    assert not any('shared_head' in k for k in keys)


def official_c4_checkpoint(ours):
    """Our state under the official SoCo_C4 names (SoCo_C4.py:42-70, saved by
    main_pretrain.py:116-124 as 'model' of a DDP module)."""
    model = {'module.' + name: value for name, value in official_state(ours).items()}
    model['module.queue'] = torch.randn(128, 16)
    model['module.queue_ptr'] = torch.zeros(1, dtype=torch.long)
    return {'opt': argparse.Namespace(model='SoCo_C4', amp_opt_level='O1'), 'model': model,
            'optimizer': {}, 'scheduler': {}, 'epoch': 400}


def official_detectron2_c4_name(k):  # convert_detectron2_C4.py:28-40
    if 'layer' not in k:
        k = 'stem.' + k
    for a, b in (('layer1', 'res2'), ('layer2', 'res3'), ('layer3', 'res4'), ('layer4', 'res5'),
                 ('bn1', 'conv1.norm'), ('bn2', 'conv2.norm'), ('bn3', 'conv3.norm'),
                 ('downsample.0', 'shortcut'), ('downsample.1', 'shortcut.norm')):
        k = k.replace(a, b)
    return k


def test_official_soco_c4_checkpoint_to_detectron2_c4(soco_c4_state, tmp_path):
    official = official_c4_checkpoint(soco_c4_state)
    src, dst = str(tmp_path / 'ckpt_epoch_400.pth'), str(tmp_path / 'soco_c4_d2.pkl')
    torch.save(official, src)
    assert convert_pretrained.main([src, dst, '--to', 'detectron2']) == 0
    with open(dst, 'rb') as f:
        d2 = pickle.load(f)
    assert d2['matching_heuristics'] is True
    encoder = {k[len('module.encoder.'):]: v for k, v in official['model'].items()
               if k.startswith('module.encoder.')}
    expected = {}
    for key, value in encoder.items():
        name = official_detectron2_c4_name(key)
        expected['roi_heads.' + name if name.startswith('res5.') else name] = value
    assert set(d2['model']) == set(expected)
    for name, value in expected.items():
        assert (d2['model'][name] == value.numpy()).all(), name
    # The official tensors go where ours do: the same mmdet state dict.
    from crosscl_mm.converters import convert
    a = convert({'state_dict': soco_c4_state}, 'mmdet').state_dict
    b = convert(official, 'mmdet').state_dict
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_c4_layout_refuses_fpn_and_incomplete_stages(soco_c4_state, tmp_path, capsys):
    src = str(tmp_path / 'c4.pth')
    torch.save({'state_dict': soco_c4_state}, src)
    out = str(tmp_path / 'out.pth')
    assert convert_pretrained.main([src, out, '--to', 'mmdet', '--with-fpn']) == 2
    assert '--no-c4' in capsys.readouterr().err and not osp.exists(out)
    # Recognised as SoCo-C4 (res5 head, predictor) but stage 3 is missing.
    torch.save({'state_dict': {k: v for k, v in soco_c4_state.items()
                               if not k.startswith('backbone.layer3.')}}, src)
    assert convert_pretrained.main([src, out, '--to', 'detectron2']) == 2
    assert 'stages 1-3' in capsys.readouterr().err and not osp.exists(out)
