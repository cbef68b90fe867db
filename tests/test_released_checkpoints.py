"""Every released checkpoint layout the converter reads (DetCo / DenseCL
releases in torchvision names, MoCo v2, the official RegionCL-M's OpenSelfSup
layout, CoinCheung/DenseCL's RegionCL-D, detectron2 .pkl files: a C4 backbone
and SoCo's FPN + box head), each built here from its documented names without
crosscl_mm's code, with random values: converted, loaded into mmdet's
detector with no missing backbone key, and its C2-C5 features compared with
torchvision's ResNet run on the same tensors. R50 for each layout, R101 for
the RegionCL-D release through the R101-C4 benchmark config."""
import importlib.util
import os
import os.path as osp
import pickle
import re
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torchvision

import crosscl_mm  # noqa: F401
from crosscl_mm.converters import (CheckpointError, convert, load_checkpoint_safely,
                                   read_pretrained_checkpoint)
from crosscl_mm.converters.encoder_weights import READERS, tensor_dict

from conftest import REPO

CONVERTER = osp.join(REPO, 'tools', 'model_converters', 'convert_pretrained.py')
BENCHMARKS = osp.join(REPO, 'configs', 'benchmarks', 'mmdetection')
VOC_R50 = osp.join(BENCHMARKS, 'faster-rcnn_r50-c4_syncbn_detco_24k_voc0712.py')
VOC_R101 = osp.join(BENCHMARKS, 'faster-rcnn_r101-c4_syncbn_regioncl-d_24k_voc0712.py')
SOCO_FPN = osp.join(BENCHMARKS, 'mask-rcnn_r50-fpn-4conv1fc_syncbn-all_soco_ms-90k_coco.py')


# ---------------------------------------------------------------- reference side
def random_resnet(arch: str, seed: int) -> 'OrderedDict[str, torch.Tensor]':
    """torchvision's ResNet names and shapes (no fc), random values: He-scaled
    convs and BN layers with non-trivial affine terms and statistics, so
    activations stay of order one and a mix-up of any two tensors shows."""
    g = torch.Generator().manual_seed(seed)
    state = OrderedDict()
    with torch.device('meta'):  # names and shapes only
        names = getattr(torchvision.models, arch)().state_dict()
    for name, ref in names.items():
        if name.startswith('fc.'):
            continue
        if ref.dim() == 4:
            fan_in = ref[0].numel()
            state[name] = torch.randn(ref.shape, generator=g) * (2.0 / fan_in) ** 0.5
        elif name.endswith('num_batches_tracked'):
            state[name] = torch.tensor(1000)
        elif name.endswith('running_var'):
            state[name] = torch.rand(ref.shape, generator=g) + 0.5
        elif name.endswith('weight'):
            # the last BN of each block small, as zero-init residuals leave it
            scale = 0.2 if name.endswith(('bn3.weight', 'downsample.1.weight')) else 1.0
            state[name] = (torch.rand(ref.shape, generator=g) + 0.5) * scale
        else:  # bias, running_mean
            state[name] = torch.randn(ref.shape, generator=g) * 0.1
    return state


def torchvision_features(arch, tensors, x):
    """C2-C5 of torchvision's ResNet loaded with ``tensors`` (eval mode)."""
    with torch.device('meta'):
        net = getattr(torchvision.models, arch)()
    missing, unexpected = net.load_state_dict(tensors, strict=False, assign=True)
    assert sorted(missing) == ['fc.bias', 'fc.weight'] and not unexpected
    net.eval()
    with torch.no_grad():
        c2 = net.layer1(net.maxpool(net.relu(net.bn1(net.conv1(x)))))
        c3 = net.layer2(c2)
        c4 = net.layer3(c3)
        return c2, c3, c4, net.layer4(c4)


def detectron2_name(key: str) -> str:
    """The renaming of the releases' detectron2 converters (MoCo's and DetCo's
    convert-pretrain-to-detectron2.py, SoCo's convert_detectron2_C4.py):
    layerN -> res(N+1), the rest under stem, bnK -> convK.norm, downsample.0/1
    -> shortcut / shortcut.norm."""
    key = re.sub(r'^layer(\d)', lambda m: f'res{int(m.group(1)) + 1}', key)
    key = key if key.startswith('res') else 'stem.' + key
    key = re.sub(r'\bbn(\d)', r'conv\1.norm', key)
    return re.sub(r'downsample\.([01])', lambda m: ('shortcut', 'shortcut.norm')[int(m.group(1))],
                  key)


def projection(prefix, g, hidden=64, out=16, inputs=2048):
    return {f'{prefix}0.weight': torch.randn(hidden, inputs, generator=g),
            f'{prefix}0.bias': torch.zeros(hidden),
            f'{prefix}2.weight': torch.randn(out, hidden, generator=g),
            f'{prefix}2.bias': torch.zeros(out)}


def optimizer_state():
    return {'state': {}, 'param_groups': [{'lr': 0.03, 'momentum': 0.9, 'params': [0, 1]}]}


# ------------------------------------------------------- the layouts, by their docs
def detco_release(q, k):
    # xieenze/DetCo README: detco_200ep.pth, read by its converter as obj['state_dict']
    return {'state_dict': q}


def moco_v2(q, k):
    # facebookresearch/moco main_moco.py: the DDP model, --mlp: fc = Linear, ReLU, Linear
    g = torch.Generator().manual_seed(5)
    state = OrderedDict()
    for prefix, enc in (('module.encoder_q.', q), ('module.encoder_k.', k)):
        state.update((prefix + n, v) for n, v in enc.items())
        state.update(projection(prefix + 'fc.', g))
    state['module.queue'] = torch.randn(16, 32, generator=g)
    state['module.queue_ptr'] = torch.zeros(1, dtype=torch.long)
    return {'epoch': 200, 'arch': 'resnet50', 'state_dict': state,
            'optimizer': optimizer_state()}


def regioncl_official(q, k):
    # Annbless/RegionCL (OpenSelfSup): encoder_q = Sequential(backbone, neck),
    # self.backbone = encoder_q[0] (RegionCLM.py:48), plain queue buffers
    g = torch.Generator().manual_seed(6)
    state = OrderedDict()
    state.update(('encoder_q.0.' + n, v) for n, v in q.items())
    state.update(projection('encoder_q.1.mlp.', g))
    state.update(('encoder_k.0.' + n, v) for n, v in k.items())
    state.update(projection('encoder_k.1.mlp.', g))
    state.update(('backbone.' + n, v.clone()) for n, v in q.items())
    state['queue'] = torch.randn(16, 32, generator=g)
    state['queue_ptr'] = torch.zeros(1, dtype=torch.long)
    return {'meta': {'epoch': 200, 'iter': 250200, 'mmcv_version': '1.0.3'},
            'state_dict': state, 'optimizer': optimizer_state()}


def regioncl_d(q, k, arch='resnet50'):
    # CoinCheung/DenseCL --cutmix (main_densecl.py:283-288, builder.py, resnet.py:159-163)
    g = torch.Generator().manual_seed(7)
    state = OrderedDict()
    for prefix, enc in (('module.encoder_q.', q), ('module.encoder_k.', k)):
        state.update((prefix + n, v) for n, v in enc.items())
        state.update(projection(prefix + 'fc.', g))
        state[prefix + 'dense_head.0.weight'] = torch.randn(64, 2048, 1, 1, generator=g)
        state[prefix + 'dense_head.0.bias'] = torch.zeros(64)
        state[prefix + 'dense_head.2.weight'] = torch.randn(16, 64, 1, 1, generator=g)
        state[prefix + 'dense_head.2.bias'] = torch.zeros(16)
    for name in ('queue', 'queue_dense'):
        state['module.' + name] = torch.randn(16, 32, generator=g)
    state['module.queue_ptr'] = torch.zeros(1, dtype=torch.long)
    return {'epoch': 200, 'arch': arch, 'state_dict': state, 'optimizer': optimizer_state()}


def detectron2_c4_pkl(q, k):
    # SoCo's convert_detectron2_C4.py / DetCo's converter output (a plain pickle)
    model = {detectron2_name(n): v.numpy() for n, v in q.items()}
    return {'model': model, '__author__': 'PixPro', 'matching_heuristics': True}


# name: (the checkpoint from query and key tensors, the reader's name, a plain pickle?)
LAYOUTS = {
    'detco_release': (detco_release, 'torchvision-named ResNet (DetCo / DenseCL release)', False),
    'moco_v2': (moco_v2, 'MoCo v1/v2', False),
    'regioncl_official': (regioncl_official, 'OpenSelfSup MoCo-style (official RegionCL-M)', False),
    'regioncl_d': (regioncl_d, 'DenseCL / RegionCL-D (CoinCheung/DenseCL)', False),
    'detectron2_c4_pkl': (detectron2_c4_pkl, 'detectron2 ResNet (.pkl)', True),
}


def write(checkpoint, path, plain_pickle=False):
    if plain_pickle:  # as the releases' detectron2 converters write it
        with open(path, 'wb') as f:
            pickle.dump(checkpoint, f)
    else:
        torch.save(checkpoint, path)


# ------------------------------------------------------------------- fixtures
@pytest.fixture(scope='module')
def r50():
    """Query and key ResNet-50 tensors, and torchvision's C2-C5 on the query's."""
    q, k = random_resnet('resnet50', 0), random_resnet('resnet50', 1)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    return q, k, x, torchvision_features('resnet50', q, x)


def build_detector(cfg, backbone_bn=False):
    """mmdet's detector of a benchmark config (a path or a Config); with
    ``backbone_bn`` no init_cfg and plain BN in backbone and res5 head."""
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(cfg) if isinstance(cfg, str) else cfg
    if backbone_bn:
        for part in (cfg.model.backbone, cfg.model.roi_head.shared_head):
            part.init_cfg = None
            part.norm_cfg = dict(type='BN', requires_grad=True)
    with DefaultScope.overwrite_default_scope('mmdet'):
        detector = MMDET_MODELS.build(cfg.model)
        if not backbone_bn:
            detector.init_weights()
    return detector.eval()


@pytest.fixture(scope='module')
def faster_rcnn_r50_c4():
    return build_detector(VOC_R50, backbone_bn=True)


def converter_main(argv):
    """tools/model_converters/convert_pretrained.py's main, run in this process."""
    spec = importlib.util.spec_from_file_location('convert_pretrained', CONVERTER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(argv)


def c4_features(detector, x):
    """C2-C4 from the C4 backbone, C5 from the res5 RoI head's layer4 (before
    its extra norm, which is not pretrained)."""
    backbone = detector.backbone
    saved = backbone.out_indices
    backbone.out_indices = (0, 1, 2)
    try:
        with torch.no_grad():
            c2, c3, c4 = backbone(x)
            return c2, c3, c4, detector.roi_head.shared_head.layer4(c4)
    finally:
        backbone.out_indices = saved


def assert_same_features(got, want):
    for name, a, b in zip(('C2', 'C3', 'C4', 'C5'), got, want):
        assert 0.05 < b.abs().mean() < 1e3, (name, b.abs().mean())  # neither dead nor exploding
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4,
                                   msg=lambda m, name=name: f'{name}: {m}')


# ---------------------------------------------------------------------- tests
@pytest.mark.parametrize('layout', sorted(LAYOUTS))
def test_release_converts_loads_into_faster_rcnn_c4_and_round_trips(
        layout, r50, faster_rcnn_r50_c4, tmp_path, capsys):
    from mmengine.runner.checkpoint import _load_checkpoint_with_prefix
    q, k, x, reference = r50
    build, source, plain_pickle = LAYOUTS[layout]
    path = str(tmp_path / 'release.pth')
    write(build(q, k), path, plain_pickle)
    out = str(tmp_path / 'mmdet.pth')
    assert converter_main([path, out, '--to', 'mmdet']) == 0
    assert f'read as: {source}, ResNet-50' in capsys.readouterr().out

    # As the benchmark config's Pretrained init_cfgs load it (prefix 'backbone.'):
    # the C4 backbone (stem, layer1-3) and the res5 head (layer4) miss nothing.
    detector = faster_rcnn_r50_c4
    converted = _load_checkpoint_with_prefix('backbone.', out, map_location='cpu')
    assert set(converted) == set(q)
    missing, unexpected = detector.backbone.load_state_dict(converted, strict=False)
    assert missing == [] and {n.split('.')[0] for n in unexpected} == {'layer4'}
    head = detector.roi_head.shared_head
    missing, unexpected = head.load_state_dict(converted, strict=False)
    assert {n.split('.')[0] for n in missing} == {'norm'}  # the extra norm: not pretrained
    assert not [n for n in converted if n.startswith('layer4.') and n not in head.state_dict()]
    assert_same_features(c4_features(detector, x), reference)

    # detectron2 and torchvision targets: names, shapes and values round-trip.
    ckpt = load_checkpoint_safely(path)
    d2 = convert(ckpt, 'detectron2', path=path).state_dict
    assert set(d2) == {detectron2_name(n) for n in q}
    assert all(torch.equal(d2[detectron2_name(n)], v) for n, v in q.items())
    tv = convert(ckpt, 'torchvision', path=path).state_dict
    assert list(tv) == list(q) and all(torch.equal(tv[n], v) for n, v in q.items())
    net = torchvision.models.resnet50()
    missing, unexpected = net.load_state_dict(tv, strict=False)
    assert sorted(missing) == ['fc.bias', 'fc.weight'] and not unexpected


def test_each_layout_is_recognised_by_exactly_one_reader(r50):
    """Each released layout, and each of crosscl_mm's own, is claimed by one
    reader, so registration order decides nothing; the one exception predates
    the released readers: crosscl_mm SoCo also has CrossCL's backbone.* and
    neck.*, and its reader is registered first (converters/__init__.py)."""
    q, k, _, _ = r50
    checkpoints = {}
    for layout, (build, source, plain_pickle) in LAYOUTS.items():
        ckpt = build(q, k)
        if plain_pickle:  # what the loader gives back: the arrays as tensors
            ckpt = dict(ckpt, model={n: torch.from_numpy(v) for n, v in ckpt['model'].items()})
        checkpoints[layout] = (ckpt, source)
    tiny = torch.zeros(1)
    ours = {  # crosscl_mm's own (module names of models/algorithms/*.py) and official layouts
        'crosscl_mm CrossCL': ['backbone.conv1.weight', 'neck.mlp.0.weight',
                               'fpn.lateral_convs.0.conv.weight', 'queue.keys', 'queue.ptr',
                               'momentum_encoder.module.backbone.conv1.weight'],
        'official CrossCL': ['module.encoder_q.conv1.weight', 'module.encoder_q.layer4.0.x',
                             'module.encoder_q.fc.0.weight', 'module.encoder_q.fpn_lateral3.weight',
                             'module.encoder_k.conv1.weight', 'module.queue'],
        'crosscl_mm DetCo': ['backbone.conv1.weight', 'backbone.layer4.0.conv1.weight',
                             'global_necks.c5.mlp.0.weight', 'local_necks.c5.mlp.0.weight',
                             'queues.global_c5.keys', 'momentum_encoder.module.backbone.x'],
        'crosscl_mm SoCo': ['backbone.conv1.weight', 'neck.lateral_convs.0.conv.weight',
                            'head.convs.0.conv.weight', 'head.fc.weight',
                            'projector.linear1.weight', 'predictor.linear1.weight'],
        'official SoCo': ['module.encoder.conv1.weight', 'module.neck.fpn_convs.0.conv.weight',
                          'module.head.conv1.weight', 'module.predictor.linear1.weight'],
    }
    for source, names in ours.items():
        checkpoints[source] = ({'state_dict': {n: tiny for n in names}}, source)
    for layout, (ckpt, source) in checkpoints.items():
        state = tensor_dict(ckpt, layout)
        claims = [name for name, (recognises, _) in READERS.items() if recognises(state)]
        if source == 'crosscl_mm SoCo':
            # also backbone.* + neck.* for CrossCL's reader: SoCo's is registered first
            assert claims == ['crosscl_mm SoCo', 'crosscl_mm CrossCL']
        else:
            assert claims == [source], layout
    assert read_pretrained_checkpoint(checkpoints['moco_v2'][0]).source == 'MoCo v1/v2'


@pytest.mark.parametrize('arch, depth', [('resnet50', 50), ('resnet101', 101)])
def test_every_layout_reports_its_depth(arch, depth):
    """Each layout's reader takes the whole ResNet at either depth; the depth
    comes from layer3's blocks (6 or 23). Names matter here, not values."""
    with torch.device('meta'):
        names = [n for n in getattr(torchvision.models, arch)().state_dict() if n[:3] != 'fc.']
    q = OrderedDict((n, torch.full((1,), float(i))) for i, n in enumerate(names))
    for layout, (build, source, plain_pickle) in LAYOUTS.items():
        ckpt = build(q, q)
        if plain_pickle:
            ckpt = dict(ckpt, model={n: torch.from_numpy(v) for n, v in ckpt['model'].items()})
        conversion = convert(ckpt, 'mmdet', path=layout)
        assert (conversion.source, conversion.depth) == (source, depth), layout
        assert sorted(conversion.state_dict) == sorted('backbone.' + n for n in names), layout
        assert f'read as: {source}, ResNet-{depth}' in conversion.summary()


def test_official_regioncl_copies_must_agree(r50):
    q, k, _, _ = r50
    ckpt = regioncl_official(q, k)
    ckpt['state_dict']['backbone.layer3.2.bn2.running_var'] += 1e-3  # a clone of q's
    path = 'regioncl.pth'
    with pytest.raises(CheckpointError, match='backbone.layer3.2.bn2.running_var differs'):
        read_pretrained_checkpoint(ckpt, path)


def test_soco_detectron2_pkl_with_fpn_and_box_head_loads_into_mask_rcnn(r50, tmp_path, capsys):
    """SoCo's convert_detectron2_Head.py output (backbone, FPN P2-P5 with BN,
    the 4conv-1fc box head under box_head.*) through the SoCo benchmark
    config's init_cfgs: every pretrained tensor lands, C2-C5 as torchvision."""
    q, _, x, reference = r50
    g = torch.Generator().manual_seed(8)
    model = {detectron2_name(n): v.numpy() for n, v in q.items()}

    def norm(prefix, channels):
        for key in ('weight', 'running_var'):
            model[f'{prefix}.norm.{key}'] = (torch.rand(channels, generator=g) + 0.5).numpy()
        for key in ('bias', 'running_mean'):
            model[f'{prefix}.norm.{key}'] = (torch.randn(channels, generator=g) * 0.1).numpy()
        model[f'{prefix}.norm.num_batches_tracked'] = np.array(1000)

    for level, channels in zip((2, 3, 4, 5), (256, 512, 1024, 2048)):
        for kind, shape in (('lateral', (256, channels, 1, 1)), ('output', (256, 256, 3, 3))):
            model[f'fpn_{kind}{level}.weight'] = torch.randn(shape, generator=g).numpy()
            norm(f'fpn_{kind}{level}', 256)
    for i in range(1, 5):
        model[f'box_head.conv{i}.weight'] = torch.randn(256, 256, 3, 3, generator=g).numpy()
        norm(f'box_head.conv{i}', 256)
    model['box_head.fc1.weight'] = torch.randn(1024, 256 * 49, generator=g).numpy()
    model['box_head.fc1.bias'] = torch.randn(1024, generator=g).numpy()
    path = str(tmp_path / 'soco_fpn.pkl')
    with open(path, 'wb') as f:
        pickle.dump({'model': model, '__author__': 'Yue', 'matching_heuristics': True}, f)

    out = str(tmp_path / 'soco_mmdet.pth')
    assert converter_main([path, out, '--to', 'mmdet', '--with-fpn', '--with-box-head']) == 0
    assert 'read as: detectron2 ResNet (.pkl), ResNet-50' in capsys.readouterr().out
    from mmengine.config import Config
    cfg = Config.fromfile(SOCO_FPN)
    cfg.model.backbone.init_cfg.checkpoint = out
    cfg.model.neck.init_cfg[0].checkpoint = out
    cfg.model.roi_head.bbox_head.init_cfg[2].checkpoint = out
    detector = build_detector(cfg)
    state = detector.state_dict()
    # mmdet names of the tensors in the pkl, written out from the two layouts
    expected = {'backbone.' + n: model[detectron2_name(n)] for n in q}
    for level in (2, 3, 4, 5):
        for kind, group in (('lateral', 'lateral_convs'), ('output', 'fpn_convs')):
            expected[f'neck.{group}.{level - 2}.conv.weight'] = model[f'fpn_{kind}{level}.weight']
            for key in ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked'):
                expected[f'neck.{group}.{level - 2}.bn.{key}'] = \
                    model[f'fpn_{kind}{level}.norm.{key}']
    for i in range(4):
        head = f'roi_head.bbox_head.shared_convs.{i}.'
        expected[head + 'conv.weight'] = model[f'box_head.conv{i + 1}.weight']
        for key in ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked'):
            expected[head + f'bn.{key}'] = model[f'box_head.conv{i + 1}.norm.{key}']
    expected['roi_head.bbox_head.shared_fcs.0.weight'] = model['box_head.fc1.weight']
    expected['roi_head.bbox_head.shared_fcs.0.bias'] = model['box_head.fc1.bias']
    pretrained = sorted(n for n in state if n.startswith(
        ('backbone.', 'neck.', 'roi_head.bbox_head.shared_')))
    assert pretrained == sorted(expected)  # nothing missing, nothing extra
    for name, value in expected.items():
        assert np.array_equal(state[name].numpy(), value), name  # the init_cfgs loaded it
    with torch.no_grad():
        assert_same_features(detector.backbone(x), reference)


def test_r101_regioncl_d_release_through_the_r101_c4_benchmark_config(tmp_path, capsys):
    """The seed's R101 RegionCL-D release layout, converted and loaded by the
    R101-C4 VOC leaf's own init_cfgs; the depth is read from layer3's 23 blocks."""
    # The key encoder shares the query's tensors here (saved once): the R50
    # cases already tell the two apart; this one is about the depth.
    q = random_resnet('resnet101', 10)
    k = q
    path = str(tmp_path / 'regioncl_r101_checkpoint_0199.pth.tar')
    write(regioncl_d(q, k, arch='resnet101'), path)
    out = str(tmp_path / 'regioncl-d_r101_mmdet.pth')
    assert converter_main([path, out, '--to', 'mmdet']) == 0
    assert 'read as: DenseCL / RegionCL-D (CoinCheung/DenseCL), ResNet-101' in \
        capsys.readouterr().out
    from mmengine.config import Config
    cfg = Config.fromfile(VOC_R101)
    assert cfg.model.backbone.depth == 101 and cfg.model.roi_head.shared_head.depth == 101
    cfg.model.backbone.init_cfg.checkpoint = out
    cfg.model.roi_head.shared_head.init_cfg.checkpoint = out
    detector = build_detector(cfg)
    loaded = {('backbone.' + n): v for n, v in detector.backbone.state_dict().items()}
    head = detector.roi_head.shared_head.state_dict()
    loaded.update(('backbone.' + n, v) for n, v in head.items() if n.startswith('layer4.'))
    assert sorted(loaded) == sorted('backbone.' + n for n in q)  # no backbone key missing
    assert all(torch.equal(loaded['backbone.' + n], v) for n, v in q.items())
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    assert_same_features(c4_features(detector, x), torchvision_features('resnet101', q, x))


def test_unknown_layout_is_refused_with_what_was_found_and_what_is_accepted(tmp_path, capsys):
    g = torch.Generator().manual_seed(0)
    vit = {'state_dict': {'encoder.layers.0.attn.weight': torch.randn(4, 4, generator=g),
                          'encoder.layers.1.attn.weight': torch.randn(4, 4, generator=g),
                          'cls_token': torch.zeros(1, 1, 4),
                          'head.weight': torch.randn(2, 4, generator=g)}}
    path = str(tmp_path / 'vit.pth')
    torch.save(vit, path)
    out = tmp_path / 'out.pth'
    assert converter_main([path, str(out), '--to', 'mmdet']) == 2
    err = capsys.readouterr().err
    assert 'an unknown layout' in err and 'Found 4 tensors: encoder.* (2), cls_token (1), ' \
        'head.* (1)' in err
    assert 'Accepted layouts' in err
    for accepted in ('MoCo v1/v2: module.encoder_q.*', 'module.encoder_q.* with fc.* and '
                     'dense_head.* dropped', 'encoder_q.0.* (= backbone.*)', 'stem.conv1.*',
                     'crosscl_mm SoCo', 'official SoCo', 'crosscl_mm DetCo'):
        assert accepted in err, accepted
    assert not out.exists() and not list(tmp_path.glob('*.partial'))
    # detectron2's ImageNet R-50.pkl is Caffe2-named: refused the same way, as a pickle
    caffe2 = str(tmp_path / 'R-50.pkl')
    with open(caffe2, 'wb') as f:
        pickle.dump({'blobs': {'conv1_w': np.zeros((64, 3, 7, 7), np.float32),
                               'res2_0_branch2a_w': np.zeros((64, 64, 1, 1), np.float32)}}, f)
    assert converter_main([caffe2, str(out), '--to', 'detectron2']) == 2
    err = capsys.readouterr().err
    assert 'Found 2 tensors: conv1_w (1), res2_0_branch2a_w (1)' in err and not out.exists()


def test_a_pickle_that_would_run_code_is_refused(tmp_path, capsys):
    marker = tmp_path / 'PWNED'

    class Evil:
        def __reduce__(self):
            return (os.system, (f'touch {marker}',))

    out = tmp_path / 'out.pth'
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        path = str(tmp_path / f'evil{protocol}.pkl')
        with open(path, 'wb') as f:
            pickle.dump({'model': {'stem.conv1.weight': np.zeros((2, 3), np.float32)},
                         '__author__': Evil(), 'matching_heuristics': True}, f, protocol=protocol)
        assert converter_main([path, str(out), '--to', 'mmdet']) == 2
        err = capsys.readouterr().err
        assert 'refused to load: a plain pickle' in err and 'numpy arrays and plain data only' \
            in err and f'{os.system.__module__}.system' in err, err
    objects = str(tmp_path / 'objects.pkl')
    with open(objects, 'wb') as f:
        pickle.dump({'model': {'stem.conv1.weight': np.array([1, 'a'], dtype=object)}}, f)
    assert converter_main([objects, str(out), '--to', 'mmdet']) == 2
    assert 'dtype object' in capsys.readouterr().err
    assert not marker.exists() and not out.exists() and not list(tmp_path.glob('*.partial'))


def test_a_detectron2_pkl_written_by_the_converter_reads_back(r50, tmp_path):
    """--to detectron2 output (pickle protocol 5, numpy arrays) through the
    converter again gives the same mmdet state dict as the source."""
    q, k, _, _ = r50
    src = str(tmp_path / 'moco.pth')
    write(moco_v2(q, k), src)
    d2 = str(tmp_path / 'moco_d2.pkl')
    assert converter_main([src, d2, '--to', 'detectron2']) == 0
    with open(d2, 'rb') as f:
        assert pickle.load(f)['matching_heuristics'] is True
    ckpt = load_checkpoint_safely(d2)
    again = convert(ckpt, 'mmdet', path=d2).state_dict
    direct = convert(load_checkpoint_safely(src), 'mmdet', path=src).state_dict
    assert set(again) == set(direct) and all(torch.equal(again[n], direct[n]) for n in direct)
    assert ckpt['__author__'] == 'crosscl_mm'
