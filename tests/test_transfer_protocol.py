"""The fine-tuning protocol is pinned: every value of docs/transfer_protocol.md's
tables is checked against the mmdet configs it names (loaded with mmengine)
and against the detectron2 YAMLs (parsed as detectron2 reads them); the
optimizer and the inits the table promises are checked on the built model."""
import ast
import copy
import glob
import math
import os.path as osp
import re

import pytest
import torch
import yaml

from conftest import REPO

DOC = osp.join(REPO, 'docs', 'transfer_protocol.md')
MMDET_CONFIGS = osp.join(REPO, 'configs', 'benchmarks', 'mmdetection')
D2_CONFIGS = osp.join(REPO, 'configs', 'benchmarks', 'detectron2')
COCO_90K = 'mask-rcnn_r50-fpn_syncbn-all_crosscl-fpn_ms-90k_coco.py'

# detectron2/config/defaults.py (facebookresearch/detectron2 at 02b5c4e): the
# defaults the reference's YAMLs rely on without setting them.
D2_DEFAULTS = {
    'MODEL.RPN.IOU_THRESHOLDS': [0.3, 0.7],
    'MODEL.RPN.BATCH_SIZE_PER_IMAGE': 256,
    'MODEL.RPN.POSITIVE_FRACTION': 0.5,
    'MODEL.RPN.NMS_THRESH': 0.7,
    'MODEL.ROI_HEADS.IOU_THRESHOLDS': [0.5],
    'MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE': 512,
    'MODEL.ROI_HEADS.POSITIVE_FRACTION': 0.25,
    'MODEL.ROI_HEADS.PROPOSAL_APPEND_GT': True,
    'MODEL.ROI_HEADS.SCORE_THRESH_TEST': 0.05,
    'MODEL.ROI_HEADS.NMS_THRESH_TEST': 0.5,
    'MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS': (10.0, 10.0, 5.0, 5.0),
    'MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO': 0,
    'MODEL.ROI_BOX_HEAD.CONV_DIM': 256,
    'MODEL.ROI_BOX_HEAD.FC_DIM': 1024,
    'MODEL.FPN.OUT_CHANNELS': 256,
    'TEST.DETECTIONS_PER_IMAGE': 100,
    'INPUT.RANDOM_FLIP': 'horizontal',
    'DATALOADER.ASPECT_RATIO_GROUPING': True,
    'DATALOADER.SAMPLER_TRAIN': 'TrainingSampler',
    'DATALOADER.FILTER_EMPTY_ANNOTATIONS': True,
    'SOLVER.GAMMA': 0.1,
    'SOLVER.BIAS_LR_FACTOR': 1.0,
    'SOLVER.CHECKPOINT_PERIOD': 5000,
}
# Per release, for a YAML whose first line names it ('# detectron2 v0.3'): the
# defaults of detectron2/config/defaults.py at that tag where they differ from
# 02b5c4e's for a key a table reads (v0.3: WEIGHT_DECAY_BIAS bound to 1e-4;
# RetinaNet's keys, which no 02b5c4e-pinned table needs).
D2_DEFAULTS_BY_VERSION = {
    'v0.3': dict(D2_DEFAULTS, **{
        'SOLVER.WEIGHT_DECAY_BIAS': 1e-4,
        'MODEL.RETINANET.BBOX_REG_WEIGHTS': (1.0, 1.0, 1.0, 1.0),
        'MODEL.ANCHOR_GENERATOR.OFFSET': 0.0,
    }),
}
D2_KEY = re.compile(r'^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)+$')
MMDET_KEY = re.compile(r'^[a-z_][a-z0-9_]*(\[\d+\]|\.[a-z_][a-z0-9_]*)*$')


def parse_protocol_tables(path=DOC):
    """[(mmdet configs, detectron2 yamls, [row cells])] from the doc: each
    table follows a line 'Configs: `a.py`, ...; detectron2: `x.yaml`'."""
    tables, current = [], None
    for line in open(path):
        line = line.strip()
        if line.startswith('Configs:'):
            names = re.findall(r'`([^`]+)`', line)
            current = ([n for n in names if n.endswith('.py')],
                       [n for n in names if n.endswith('.yaml')], [])
            tables.append(current)
        elif line.startswith('#'):
            current = None
        elif current is not None and line.startswith('|') and not line.startswith('| ---'):
            cells = [c.strip() for c in line.strip('|').split('|')]
            if cells[0] != 'setting':
                assert len(cells) == 7, line
                current[2].append(cells)
    return tables


def code(cell):
    match = re.fullmatch(r'`([^`]*)`', cell)
    return match.group(1) if match else None


def normalise(value):
    if isinstance(value, (list, tuple)):
        return [normalise(v) for v in value]
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items() if k != '_scope_'}
    return value


def same_value(actual, expected):
    actual, expected = normalise(actual), normalise(expected)
    if isinstance(expected, float) or isinstance(actual, float):
        return isinstance(actual, (int, float)) and not isinstance(actual, bool) and \
            math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(expected, list):
        return isinstance(actual, list) and len(actual) == len(expected) and \
            all(same_value(a, e) for a, e in zip(actual, expected))
    if isinstance(expected, dict):
        return isinstance(actual, dict) and actual.keys() == expected.keys() and \
            all(same_value(actual[k], expected[k]) for k in expected)
    return type(actual) is type(expected) and actual == expected


def lookup(cfg, key):
    value = cfg
    for name, index in re.findall(r'\.?([a-z_][a-z0-9_]*)|\[(\d+)\]', key):
        value = value[int(index)] if index else value[name]
    return value


def load_mmdet(name, _cache={}):
    if name not in _cache:
        import crosscl_mm  # noqa: F401  (resolves crosscl_mm:: and imports our registry)
        from mmengine.config import Config
        _cache[name] = Config.fromfile(osp.join(MMDET_CONFIGS, name))
    return _cache[name]


def load_detectron2(name):
    """A detectron2 YAML as detectron2 reads it: `_BASE_` merged recursively,
    strings that are Python literals (tuples) evaluated as yacs does."""
    def decode(value):
        if isinstance(value, dict):
            return {k: decode(v) for k, v in value.items()}
        if isinstance(value, str):
            try:
                return ast.literal_eval(value)
            except (ValueError, SyntaxError):
                return value
        return value

    def merge(base, child):
        for k, v in child.items():
            base[k] = merge(base.get(k, {}), v) if isinstance(v, dict) else v
        return base

    path = osp.join(D2_CONFIGS, name)
    with open(path) as f:
        cfg = yaml.safe_load(f)
    base = cfg.pop('_BASE_', None)
    cfg = decode(cfg)
    return merge(load_detectron2(base), cfg) if base else cfg


def d2_defaults(name):
    """The detectron2 defaults a YAML of configs/benchmarks/detectron2 runs
    under: its release's when its first line names one, else D2_DEFAULTS."""
    with open(osp.join(D2_CONFIGS, name)) as f:
        match = re.match(r'# detectron2 (v[0-9.]+)', f.readline())
    return D2_DEFAULTS_BY_VERSION[match.group(1)] if match else D2_DEFAULTS


def d2_value(cfg, key, defaults=D2_DEFAULTS):
    node = cfg
    for part in key.split('.'):
        if not isinstance(node, dict) or part not in node:
            if key not in defaults:
                raise KeyError(f'{key}: neither set nor in D2_DEFAULTS')
            return defaults[key]
        node = node[part]
    return node


TABLES = parse_protocol_tables()


def test_doc_tables_cover_every_benchmark_config():
    named = {name for configs, _, _ in TABLES for name in configs}
    on_disk = {osp.relpath(p, MMDET_CONFIGS) for p in
               glob.glob(osp.join(MMDET_CONFIGS, '*.py'))
               + glob.glob(osp.join(MMDET_CONFIGS, '_base_', '*.py'))}
    assert on_disk == named
    assert {y for _, yamls, _ in TABLES for y in yamls} == \
        {osp.basename(p) for p in glob.glob(osp.join(D2_CONFIGS, '*.yaml'))}
    assert sum(len(rows) for _, _, rows in TABLES) > 150


@pytest.mark.parametrize('index', range(len(TABLES)))
def test_mmdet_configs_hold_the_table_values(index):
    configs, _, rows = TABLES[index]
    checked, wrong = 0, []
    for name in configs:
        cfg = load_mmdet(name)
        for setting, _, _, key, value, _, _ in rows:
            if code(key) is None or not MMDET_KEY.match(code(key)):
                continue
            expected = ast.literal_eval(code(value))
            try:
                actual = lookup(cfg, code(key))
            except (KeyError, IndexError, TypeError):
                actual = '<missing>'
            checked += 1
            if not same_value(actual, expected):
                wrong.append(f'{name}: {code(key)} = {actual!r}, the table says {expected!r} '
                             f'({setting})')
    assert checked > 0 and wrong == []


@pytest.mark.parametrize('index', range(len(TABLES)))
def test_detectron2_yamls_hold_the_reference_values(index):
    _, yamls, rows = TABLES[index]
    wrong = []
    for name in yamls:
        cfg = load_detectron2(name)
        for setting, key, value, _, _, _, _ in rows:
            if code(key) is None or not D2_KEY.match(code(key)) or code(value) is None:
                continue
            expected = ast.literal_eval(code(value))
            actual = d2_value(cfg, code(key), d2_defaults(name))
            if not same_value(actual, expected):
                wrong.append(f'{name}: {code(key)} = {actual!r}, the table says {expected!r}')
    assert wrong == []


def test_detectron2_yamls_describe_the_converted_network():
    """The settings a converted .pkl needs in any detectron2 R50 config, and
    the reference's FPN/head settings, independently of the doc."""
    for name in ('mask_rcnn_R_50_FPN_1x_syncbn_crosscl.yaml',
                 'mask_rcnn_R_50_FPN_2x_syncbn_crosscl.yaml',
                 'faster_rcnn_R_50_C4_24k_voc0712_syncbn_crosscl.yaml'):
        cfg = load_detectron2(name)
        model = cfg['MODEL']
        assert model['RESNETS']['STRIDE_IN_1X1'] is False
        assert cfg['INPUT']['FORMAT'] == 'RGB'
        assert model['PIXEL_MEAN'] == [123.675, 116.280, 103.530]
        assert model['PIXEL_STD'] == [58.395, 57.120, 57.375]
        assert model['RESNETS']['NORM'] == 'SyncBN' and model['BACKBONE']['FREEZE_AT'] == 0
        assert cfg['TEST']['PRECISE_BN']['ENABLED'] is True
        assert cfg['SOLVER']['WEIGHT_DECAY_NORM'] == 0.0
    fpn = load_detectron2('mask_rcnn_R_50_FPN_2x_syncbn_crosscl.yaml')
    assert fpn['MODEL']['FPN']['NORM'] == 'SyncBN'
    assert fpn['MODEL']['ROI_BOX_HEAD'] == dict(NAME='FastRCNNConvFCHead', NUM_CONV=4, NUM_FC=1,
                                               NORM='SyncBN', POOLER_RESOLUTION=7)
    assert fpn['SOLVER']['MAX_ITER'] == 180000 and fpn['SOLVER']['STEPS'] == (120000, 160000)
    assert fpn['SOLVER']['WEIGHT_DECAY'] == 2.5e-5  # inherited from the 1x file
    voc = load_detectron2('faster_rcnn_R_50_C4_24k_voc0712_syncbn_crosscl.yaml')
    assert voc['MODEL']['ROI_HEADS']['NAME'] == 'Res5ROIHeadsExtraNorm'
    assert voc['INPUT']['MIN_SIZE_TRAIN'] == tuple(range(480, 801, 32))


def test_a_changed_value_fails_the_pinning(tmp_path):
    """The check itself catches drift: a user config that changes one value
    of the 90k protocol is reported with the key and both values."""
    from mmengine.config import Config
    import crosscl_mm  # noqa: F401
    cfg = Config.fromfile(osp.join(MMDET_CONFIGS, COCO_90K))
    cfg.param_scheduler[0].end = 500
    rows = [r for configs, _, rows in TABLES if COCO_90K in configs for r in rows]
    wrong = [r[3] for r in rows if code(r[3]) and MMDET_KEY.match(code(r[3]))
             and not same_value(lookup(cfg, code(r[3])), ast.literal_eval(code(r[4])))]
    assert wrong == ['`param_scheduler[0].end`']


@pytest.fixture(scope='module')
def protocol_mask_rcnn():
    """The 90k protocol's Mask R-CNN, initialised without pretrained weights,
    with its optimizer built as the runner builds it."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    cfg = load_mmdet(COCO_90K)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.init_cfg = None
    model_cfg.neck.init_cfg = model_cfg.neck.init_cfg[0]
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(model_cfg)
        model.init_weights()
        optim = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    return model, optim


def test_optimizer_decays_no_norm_layer_as_detectron2(protocol_mask_rcnn):
    """detectron2 v0.3's get_default_optimizer_params: weight_decay_norm (0)
    for the parameters of norm modules, WEIGHT_DECAY_BIAS (1e-4, bound when
    defaults.py loads) for the other biases, WEIGHT_DECAY (2.5e-5) for the
    rest; lr and momentum everywhere the same."""
    model, optim = protocol_mask_rcnn
    norm_types = (torch.nn.BatchNorm2d, torch.nn.SyncBatchNorm, torch.nn.GroupNorm,
                  torch.nn.LayerNorm)
    expected = {}
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            expected[id(p)] = 0.0 if isinstance(module, norm_types) else \
                1e-4 if name == 'bias' else 2.5e-5
    groups = {id(p): g for g in optim.optimizer.param_groups for p in g['params']}
    assert groups.keys() == expected.keys()
    assert sum(1 for v in expected.values() if v == 0.0) == 2 * 69  # 69 SyncBN layers
    for pid, wd in expected.items():
        assert groups[pid]['weight_decay'] == wd
        assert groups[pid]['lr'] == 0.02 and groups[pid]['momentum'] == 0.9


def test_head_and_fpn_init_as_detectron2(protocol_mask_rcnn):
    """c2_msra_fill (Kaiming normal, fan_out, ReLU) for the box head convs,
    c2_xavier_fill (Kaiming uniform, a=1: bound sqrt(3 / fan_in)) for the box
    head fc and the FPN convs, normal 0.01 / 0.001 for the predictors."""
    model, _ = protocol_mask_rcnn
    head = model.roi_head.bbox_head
    conv = head.shared_convs[0].conv.weight
    fan_out = conv.shape[0] * conv.shape[2] * conv.shape[3]
    assert conv.std().item() == pytest.approx(math.sqrt(2 / fan_out), rel=0.02)
    for fc in (head.shared_fcs[0], model.neck.lateral_convs[0].conv, model.neck.fpn_convs[3].conv):
        w = fc.weight
        bound = math.sqrt(3 / (w[0].numel()))
        assert w.abs().max().item() <= bound
        assert w.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.03)
    assert head.fc_cls.weight.std().item() == pytest.approx(0.01, rel=0.05)
    assert head.fc_reg.weight.std().item() == pytest.approx(0.001, rel=0.05)


SOCO_C4 = 'mask-rcnn_r50-c4_syncbn_soco-c4_soco-ms-90k_coco.py'
SOCO_LVIS = 'mask-rcnn_r50-fpn-4conv1fc_syncbn-all_soco-fpn_soco-ms-90k_lvis-v1.py'


def test_a_changed_value_fails_the_soco_pinning():
    """A user config that changes LVIS's repeat threshold, or the C4
    protocol's weight decay, is reported with the key."""
    from mmengine.config import Config
    import crosscl_mm  # noqa: F401
    for name, change, key in ((SOCO_LVIS, ('train_dataloader', 'sampler', 'repeat_thresh'),
                               'train_dataloader.sampler.repeat_thresh'),
                              (SOCO_C4, ('optim_wrapper', 'optimizer', 'weight_decay'),
                               'optim_wrapper.optimizer.weight_decay')):
        cfg = Config.fromfile(osp.join(MMDET_CONFIGS, name))
        node = cfg
        for part in change[:-1]:
            node = node[part]
        node[change[-1]] = 1e-4 if node[change[-1]] != 1e-4 else 1e-3
        rows = [r for configs, _, rows in TABLES if name in configs for r in rows]
        wrong = {r[3] for r in rows if code(r[3]) and MMDET_KEY.match(code(r[3]))
                 and not same_value(lookup(cfg, code(r[3])), ast.literal_eval(code(r[4])))}
        assert wrong == {f'`{key}`'}


@pytest.mark.parametrize('name', [SOCO_C4, SOCO_LVIS])
def test_soco_protocols_decay_as_detectron2_v0_3(name):
    """The fork's build_optimizer (v0.3): norm layers' parameters
    WEIGHT_DECAY_NORM 0, other biases WEIGHT_DECAY_BIAS 1e-4 (bound at load),
    the rest WEIGHT_DECAY 2.5e-5; lr 0.02 everywhere."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    cfg = load_mmdet(name)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(copy.deepcopy(cfg.model))
        optim = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    norm_types = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.GroupNorm)
    expected = {}
    for module in model.modules():
        for pname, p in module.named_parameters(recurse=False):
            expected[id(p)] = 0.0 if isinstance(module, norm_types) else \
                1e-4 if pname == 'bias' else 2.5e-5
    groups = {id(p): g for g in optim.optimizer.param_groups for p in g['params']}
    assert groups.keys() == expected.keys()
    assert {groups[k]['weight_decay'] for k in groups} == {0.0, 1e-4, 2.5e-5}
    for pid, wd in expected.items():
        assert groups[pid]['weight_decay'] == wd and groups[pid]['lr'] == 0.02


def test_a_changed_detco_value_fails_the_pinning():
    """The DetCo tables catch drift too: a RetinaNet config whose P6/P7 take
    the neck's norm (mmdet's FPN) and whose C4 twin trains at max size 1333
    is reported on exactly those rows."""
    from mmengine.config import Config
    import crosscl_mm  # noqa: F401
    name = '_base_/retinanet_r50-fpn-p6p7_syncbn_detco-ms-90k_coco.py'
    cfg = Config.fromfile(osp.join(MMDET_CONFIGS, name))
    cfg.model.neck.type = 'FPN'
    cfg.model.bbox_head.loss_normalizer_momentum = 0.0
    rows = [r for configs, _, rows in TABLES if name in configs for r in rows]
    wrong = [r[3] for r in rows if code(r[3]) and MMDET_KEY.match(code(r[3]))
             and not same_value(lookup(cfg, code(r[3])), ast.literal_eval(code(r[4])))]
    assert wrong == ['`model.neck.type`', '`model.bbox_head.loss_normalizer_momentum`']


# Every base whose source is detectron2's WarmupMultiStepLR ("linear", factor
# 0.001): its warmup length and steps.
DETECTRON2_SCHEDULES = {
    '_base_/mask-rcnn_r50-fpn_syncbn-all_ms-90k_coco.py': (1000, [60000, 80000]),
    '_base_/mask-rcnn_r50-fpn_syncbn-all_ms-180k_coco.py': (1000, [120000, 160000]),
    '_base_/faster-rcnn_r50-c4_syncbn-extra-norm_ms-24k_voc0712.py': (100, [18000, 22000]),
    '_base_/faster-rcnn_r101-c4_syncbn-extra-norm_ms-24k_voc0712.py': (100, [18000, 22000]),
    '_base_/mask-rcnn_r50-c4_syncbn-extra-norm_soco-ms-90k_coco.py': (1000, [60000, 80000]),
    '_base_/mask-rcnn_r50-fpn-4conv1fc_syncbn-all_soco-ms-90k_lvis-v1.py': (1000, [60000, 80000]),
    '_base_/mask-rcnn_r50-c4_syncbn-extra-norm_detco-ms-12k_coco.py': (1000, [9000, 11000]),
    '_base_/mask-rcnn_r50-fpn_syncbn_detco-ms-90k_coco.py': (1000, [60000, 80000]),
    '_base_/retinanet_r50-fpn-p6p7_syncbn_detco-ms-180k_coco.py': (1000, [120000, 160000]),
}


@pytest.mark.parametrize('name', sorted(DETECTRON2_SCHEDULES))
def test_warmup_and_steps_are_detectron2_warmup_multistep(name):
    """The lr of every iteration through the warmup and past the first step,
    from mmengine's schedulers built from the config, against detectron2's
    WarmupMultiStepLR: lr * (f + (1 - f) * i / W for i < W, else 1) * 0.1 **
    (steps passed). (mmengine's LinearLR with end=W is 0.1% off at i = W - 1.)"""
    from mmengine.config import Config
    from mmengine.optim.scheduler import LinearLR, MultiStepLR
    warmup_iters, milestones = DETECTRON2_SCHEDULES[name]
    cfg = Config.fromfile(osp.join(MMDET_CONFIGS, name))
    warm, steps = dict(cfg.param_scheduler[0]), dict(cfg.param_scheduler[1])
    assert (warm.pop('type'), steps.pop('type')) == ('LinearLR', 'MultiStepLR')
    assert steps['milestones'] == milestones
    first_step = warmup_iters + 20  # moved close, to see the step as well
    steps['milestones'] = [first_step]
    lr = cfg.optim_wrapper.optimizer.lr
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    schedulers = [LinearLR(opt, **warm), MultiStepLR(opt, **steps)]
    for it in range(first_step + 5):
        factor = 1.0 if it >= warmup_iters else 0.001 + (1 - 0.001) * it / warmup_iters
        want = lr * factor * (0.1 if it >= first_step else 1.0)
        assert opt.param_groups[0]['lr'] == pytest.approx(want, rel=1e-9), it
        opt.step()
        for s in schedulers:
            s.step()
