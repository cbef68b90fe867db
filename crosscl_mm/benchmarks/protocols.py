"""Transfer protocols: one YAML file per protocol in
``configs/benchmarks/protocols/<name>.yml``, read and checked here.

A protocol names the dataset and its files, the metrics, the backbone depth a
checkpoint must have, the default number of trials, one leaf config per
pretraining method that the source ran it with (with the converter's
arguments that give what the leaf loads), and the numbers a paper or seed
publishes for it::

    name: crosscl_faster-rcnn_r50-c4_24k_voc0712    # = the file's stem
    title: VOC07+12 Faster R-CNN R50-C4, 24k iterations
    source: yanjk3/CrossCL detection/configs/..., detectron2 v0.3
    dataset: voc0712                  # coco | lvis_v1 | voc0712
    data_root: data/VOCdevkit/        # the leaf configs' data_root
    required_files: [VOC2007/ImageSets/Main/test.txt, ...]
    metrics: [voc_bbox]               # coco/lvis_v1: bbox and/or segm
    depth: 50
    trials: 5
    leaves:
      crosscl:
        config: configs/benchmarks/mmdetection/<leaf>.py
        convert: {to: mmdet, c4: true}
    published:
      - {method: crosscl, AP: ..., AP50: ..., AP75: ..., source: "..."}

:func:`load_protocol` refuses a malformed file naming the file and the field;
:func:`check_protocol` also loads every leaf config with mmengine and checks
that the protocol fits it (depth, what the converted checkpoint must hold,
metrics, data root).
"""
import contextlib
import os
import os.path as osp
from dataclasses import dataclass, field
from numbers import Real
from typing import Dict, List, Optional

_PACKAGE = osp.dirname(osp.dirname(osp.abspath(__file__)))
REPO = osp.dirname(_PACKAGE)
if not osp.isdir(osp.join(REPO, 'configs', 'benchmarks')) and \
        osp.isdir(osp.join(_PACKAGE, '.mim', 'configs')):
    REPO = osp.join(_PACKAGE, '.mim')  # an installed package: configs/ and tools/ are there
PROTOCOL_DIR = osp.join(REPO, 'configs', 'benchmarks', 'protocols')

DATASETS = ('coco', 'lvis_v1', 'voc0712')
METRICS = {'coco': ('bbox', 'segm'), 'lvis_v1': ('bbox', 'segm'), 'voc0712': ('voc_bbox',)}
# What a table reports per metric (percent).
RESULT_KEYS = {
    'coco': {m: [f'{m}_AP', f'{m}_AP50', f'{m}_AP75'] for m in ('bbox', 'segm')},
    'lvis_v1': {m: [f'{m}_AP', f'{m}_APr', f'{m}_APc', f'{m}_APf'] for m in ('bbox', 'segm')},
    'voc0712': {'voc_bbox': ['AP', 'AP50', 'AP75']},
}
METHODS = ('crosscl', 'crosscl-fpn', 'soco-fpn', 'soco-c4', 'detco', 'densecl', 'mocov2',
           'regioncl-m', 'regioncl-d')
CONVERT_KEYS = ('to', 'with_fpn', 'with_box_head', 'c4')
FIELDS = ('name', 'title', 'source', 'dataset', 'data_root', 'required_files', 'metrics', 'depth',
          'trials', 'leaves', 'published')


class ProtocolError(ValueError):
    """A protocol file that is malformed or does not fit its configs."""


@dataclass
class Leaf:
    method: str
    config: str            # relative to the repository
    convert: Dict = field(default_factory=dict)

    @property
    def config_path(self) -> str:
        return self.config if osp.isabs(self.config) else osp.join(REPO, self.config)

    def convert_kwargs(self) -> Dict:
        """The converter's arguments, each given (c4 False unless the leaf says)."""
        return dict(to=self.convert.get('to', 'mmdet'),
                    with_fpn=bool(self.convert.get('with_fpn', False)),
                    with_box_head=bool(self.convert.get('with_box_head', False)),
                    c4=bool(self.convert.get('c4', False)))


@dataclass
class Protocol:
    name: str
    title: str
    source: str
    dataset: str
    data_root: str
    required_files: List[str]
    metrics: List[str]
    depth: int
    trials: int
    leaves: Dict[str, Leaf]
    published: List[Dict]
    path: str = ''

    def result_keys(self) -> List[str]:
        return result_keys(self.dataset, self.metrics)


def result_keys(dataset: str, metrics) -> List[str]:
    return [key for metric in metrics for key in RESULT_KEYS[dataset][metric]]


def _fail(path, field_name, message):
    raise ProtocolError(f'{path}: field "{field_name}": {message}')


def _need(data, path, name, kind, what):
    if name not in data:
        _fail(path, name, 'missing')
    value = data[name]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        _fail(path, name, f'must be {what}, got {value!r}')
    return value


def _text(data, path, name):
    value = _need(data, path, name, str, 'a non-empty string')
    if not value.strip():
        _fail(path, name, 'must be a non-empty string')
    return value


def _leaf(path, method, entry) -> Leaf:
    where = f'leaves.{method}'
    if method not in METHODS:
        _fail(path, where, f'unknown method {method!r}; known: {", ".join(METHODS)}')
    if not isinstance(entry, dict):
        _fail(path, where, f'must be a mapping with config and convert, got {entry!r}')
    unknown = sorted(set(entry) - {'config', 'convert'})
    if unknown:
        _fail(path, f'{where}.{unknown[0]}', 'unknown field (config, convert)')
    config = entry.get('config')
    if not isinstance(config, str) or not config.strip():
        _fail(path, f'{where}.config', f'must be the path of the leaf config, got {config!r}')
    convert = entry.get('convert')
    if not isinstance(convert, dict):
        _fail(path, f'{where}.convert', f'must be a mapping of {", ".join(CONVERT_KEYS)}, '
                                        f'got {convert!r}')
    for key, value in convert.items():
        if key not in CONVERT_KEYS:
            _fail(path, f'{where}.convert.{key}', f'unknown; known: {", ".join(CONVERT_KEYS)}')
        if key == 'to' and value != 'mmdet':
            _fail(path, f'{where}.convert.to', f'must be mmdet (the leaf is an mmdet config), '
                                               f'got {value!r}')
        if key != 'to' and not isinstance(value, bool):
            _fail(path, f'{where}.convert.{key}', f'must be true or false, got {value!r}')
    if convert.get('c4') and (convert.get('with_fpn') or convert.get('with_box_head')):
        _fail(path, f'{where}.convert', 'c4 excludes with_fpn and with_box_head')
    return Leaf(method, config, dict(convert))


def _published(path, entries, keys, leaves) -> List[Dict]:
    if entries is None:
        return []
    if not isinstance(entries, list):
        _fail(path, 'published', f'must be a list (may be empty), got {entries!r}')
    for i, entry in enumerate(entries):
        where = f'published[{i}]'
        if not isinstance(entry, dict):
            _fail(path, where, f'must be a mapping, got {entry!r}')
        method = entry.get('method')
        if method not in leaves:
            _fail(path, f'{where}.method', f'{method!r} is not one of the leaves '
                                           f'({", ".join(leaves)})')
        source = entry.get('source')
        if not isinstance(source, str) or not source.strip():
            _fail(path, f'{where}.source', 'missing: every published number names its source')
        numbers = [k for k in entry if k not in ('method', 'source')]
        if not numbers:
            _fail(path, where, f'no result given (keys: {", ".join(keys)})')
        for key in numbers:
            if key not in keys:
                _fail(path, f'{where}.{key}', f'not a result key of this protocol '
                                              f'({", ".join(keys)})')
            value = entry[key]
            if not isinstance(value, Real) or isinstance(value, bool) or not 0 <= value <= 100:
                _fail(path, f'{where}.{key}', f'must be a number in [0, 100], got {value!r}')
    return [dict(e) for e in entries]


def parse_protocol(data, path: str) -> Protocol:
    """Check the fields of a loaded protocol file and return it; a malformed
    field is refused with the file and the field named."""
    if not isinstance(data, dict):
        raise ProtocolError(f'{path}: expected a mapping of {", ".join(FIELDS)}, '
                            f'got {type(data).__name__}')
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        _fail(path, unknown[0], f'unknown field; known: {", ".join(FIELDS)}')
    name = _text(data, path, 'name')
    stem = osp.splitext(osp.basename(path))[0]
    if name != stem:
        _fail(path, 'name', f'{name!r} must equal the file name {stem!r}')
    title, source = _text(data, path, 'title'), _text(data, path, 'source')
    dataset = _need(data, path, 'dataset', str, f'one of {", ".join(DATASETS)}')
    if dataset not in DATASETS:
        _fail(path, 'dataset', f'{dataset!r} is not one of {", ".join(DATASETS)}')
    data_root = _text(data, path, 'data_root')
    required = _need(data, path, 'required_files', list, 'a list of paths under data_root')
    if not required or not all(isinstance(f, str) and f and not osp.isabs(f) for f in required):
        _fail(path, 'required_files',
              f'must be a non-empty list of relative paths, got {required!r}')
    metrics = _need(data, path, 'metrics', list, f'a list of {", ".join(METRICS[dataset])}')
    if not metrics or any(m not in METRICS[dataset] for m in metrics) or \
            len(set(metrics)) != len(metrics):
        _fail(path, 'metrics', f'{metrics!r}: {dataset} takes {", ".join(METRICS[dataset])} '
                               f'(each once)')
    depth = _need(data, path, 'depth', int, 'an integer')
    if depth not in (18, 34, 50, 101, 152):
        _fail(path, 'depth', f'{depth} is no ResNet depth (18, 34, 50, 101, 152)')
    trials = _need(data, path, 'trials', int, 'a positive integer')
    if trials < 1:
        _fail(path, 'trials', f'must be a positive integer, got {trials}')
    leaves_data = _need(data, path, 'leaves', dict, 'a mapping of method to leaf')
    if not leaves_data:
        _fail(path, 'leaves', 'at least one leaf is needed')
    leaves = {method: _leaf(path, method, entry) for method, entry in leaves_data.items()}
    keys = result_keys(dataset, metrics)
    published = _published(path, data.get('published', []), keys, leaves)
    return Protocol(name, title, source, dataset, data_root, list(required), list(metrics),
                    depth, trials, leaves, published, path)


def load_protocol(path: str) -> Protocol:
    import yaml
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as err:
        raise ProtocolError(f'{path}: not valid YAML: {err}') from None
    return parse_protocol(data, path)


def protocol_paths(directory: str = PROTOCOL_DIR) -> Dict[str, str]:
    """name -> file of every protocol in ``directory``."""
    if not osp.isdir(directory):
        return {}
    return {osp.splitext(f)[0]: osp.join(directory, f) for f in sorted(os.listdir(directory))
            if f.endswith('.yml')}


def find_protocol(name: str, directory: str = PROTOCOL_DIR) -> Protocol:
    """The protocol called ``name``, or an error listing the known ones."""
    paths = protocol_paths(directory)
    if name not in paths:
        known = '\n'.join(f'  {n}' for n in paths) or '  (none)'
        raise ProtocolError(f'unknown protocol {name!r}; the protocols in {directory}:\n{known}')
    return load_protocol(paths[name])


def _pretrained_inits(node, where='') -> Dict[str, List[dict]]:
    """module path -> the ``Pretrained`` init_cfgs of that module (list or
    single), over the whole model config."""
    found: Dict[str, List[dict]] = {}
    if isinstance(node, dict):
        for key, value in node.items():
            sub = f'{where}.{key}' if where else key
            if key == 'init_cfg':
                inits = value if isinstance(value, (list, tuple)) else [value]
                pretrained = [i for i in inits if isinstance(i, dict) and
                              i.get('type') == 'Pretrained']
                if pretrained:
                    found[where] = pretrained
            else:
                for path, inits in _pretrained_inits(value, sub).items():
                    found[path] = inits
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            found.update(_pretrained_inits(value, f'{where}.{i}'))
    return found


def _has_mask_head(model) -> bool:
    return bool(model.get('mask_head') or (model.get('roi_head') or {}).get('mask_head'))


def _evaluator_metrics(cfg) -> Optional[List[str]]:
    evaluator = cfg.get('val_evaluator')
    if not isinstance(evaluator, dict) or 'metric' not in evaluator:
        return None
    metric = evaluator['metric']
    return [metric] if isinstance(metric, str) else list(metric)


_RESOLVED: Dict = {}


@contextlib.contextmanager
def external_config_paths_cached():
    """Resolve each ``mmdet::`` base once while the block runs: mmengine
    reads every model-index YAML of the package (hundreds of files) for each
    ``pkg::`` base of each config it loads, the same answer every time."""
    from mmengine.config import config as mmengine_config
    original = mmengine_config._get_external_cfg_path
    if original not in _RESOLVED:
        answers: Dict = {}

        def resolve(package_path, cfg_path):
            # mmengine answers a base without a metafile (mmdet's _base_/)
            # with ValueError: that answer is kept as well.
            key = (package_path, cfg_path)
            if key not in answers:
                try:
                    answers[key] = (original(package_path, cfg_path), None)
                except ValueError as err:
                    answers[key] = (None, err)
            value, err = answers[key]
            if err is not None:
                raise err
            return value
        _RESOLVED[original] = resolve
    mmengine_config._get_external_cfg_path = _RESOLVED[original]
    try:
        yield
    finally:
        mmengine_config._get_external_cfg_path = original


def load_config(path: str):
    """``mmengine.config.Config.fromfile(path)``, its ``pkg::`` bases
    resolved once per process."""
    from mmengine.config import Config
    with external_config_paths_cached():
        return Config.fromfile(path)


def check_leaf(protocol: Protocol, leaf: Leaf):
    """Load the leaf config and check that the protocol fits it; returns the
    config."""
    path, where = protocol.path, f'leaves.{leaf.method}'
    if not osp.isfile(leaf.config_path):
        _fail(path, f'{where}.config', f'{leaf.config} does not exist')
    try:
        cfg = load_config(leaf.config_path)
    except Exception as err:  # noqa: BLE001 - any failure to load is the file's fault
        _fail(path, f'{where}.config', f'{leaf.config} does not load: {err}')
    model = cfg.get('model') or {}
    pretrained = cfg.get('pretrained')
    inits = _pretrained_inits(model)
    if not isinstance(pretrained, str) or 'backbone' not in inits:
        _fail(path, f'{where}.config', f'{leaf.config} must set `pretrained` and load it into '
                                       f'the backbone (a Pretrained init_cfg)')
    others = [f'model.{m}' for m, i in inits.items()
              if any(x.get('checkpoint') != pretrained for x in i)]
    if others:
        _fail(path, f'{where}.config', f'{leaf.config}: the Pretrained init of '
                                       f'{", ".join(others)} is not `pretrained`')
    kwargs = leaf.convert_kwargs()
    for flag, module in (('with_fpn', 'neck'), ('with_box_head', 'roi_head.bbox_head')):
        if kwargs[flag] != (module in inits):
            _fail(path, f'{where}.convert.{flag}',
                  f'{str(kwargs[flag]).lower()}, but {leaf.config} '
                  f'{"does not load" if kwargs[flag] else "loads"} model.{module} from the '
                  f'checkpoint')
    # A C4 leaf's res5 head reads layer4 either from the backbone's keys
    # (prefix 'backbone.', a plain conversion) or from the C4 layout's
    # 'roi_head.shared_head.' keys (c4: true); the file must hold the keys the
    # leaf reads, or mmdet leaves the head at its random init.
    res5_prefixes = {i.get('prefix') for i in inits.get('roi_head.shared_head', ())}
    if kwargs['c4'] != ('roi_head.shared_head.' in res5_prefixes):
        reads = (f'reads model.roi_head.shared_head from the prefixes {sorted(res5_prefixes)}'
                 if res5_prefixes else 'does not load model.roi_head.shared_head')
        _fail(path, f'{where}.convert.c4',
              f'{str(kwargs["c4"]).lower()}, but {leaf.config} {reads}; the C4 layout '
              f'(c4: true) writes layer4 as roi_head.shared_head.*, a plain conversion as '
              f'backbone.layer4.*')
    depth = (model.get('backbone') or {}).get('depth')
    if depth != protocol.depth:
        _fail(path, 'depth', f'{protocol.depth}, but {leaf.config} has model.backbone.depth '
                             f'{depth}')
    if 'segm' in protocol.metrics and not _has_mask_head(model):
        _fail(path, 'metrics', f'segm, but {leaf.config} has no mask head')
    evaluated = _evaluator_metrics(cfg)
    if evaluated is not None and protocol.dataset != 'voc0712':
        missing = [m for m in protocol.metrics if m not in evaluated]
        if missing:
            _fail(path, 'metrics', f'{leaf.config} does not evaluate {", ".join(missing)} '
                                   f'(val_evaluator.metric: {evaluated})')
    root = cfg.get('data_root')
    if isinstance(root, str) and root != protocol.data_root:
        _fail(path, 'data_root', f'{protocol.data_root!r}, but {leaf.config} has data_root '
                                 f'{root!r}')
    return cfg


def check_protocol(protocol: Protocol) -> Protocol:
    for leaf in protocol.leaves.values():
        check_leaf(protocol, leaf)
    return protocol
