"""Readers of SoCo pretraining checkpoints.

Two inputs are recognised, both by their box head and predictor, which no
other pretraining here has:

- crosscl_mm checkpoints (``state_dict`` with ``backbone.*``, ``neck.*``
  (mmdet FPN, C2-C5), ``head.convs.*`` / ``head.fc.*``, ``projector.*``,
  ``predictor.*`` and ``momentum_encoder.*``);
- official SoCo checkpoints (``model`` with ``module.encoder.*`` in
  torchvision ResNet names, ``module.neck.*`` in mmdet FPN names,
  ``module.head.conv1-4 / bn1-4 / fc1``, ``module.projector.*``,
  ``module.predictor.*`` and the ``*_k`` momentum copies;
  github hologerry/SoCo ``contrast/models/SoCo_FPN.py:49-63``).

The online backbone, FPN P2-P5 and the 4conv-1fc box head are read.

SoCo-C4 checkpoints are recognised by a res5 stage beside the predictor and
no FPN: crosscl_mm's (``backbone.*`` stages 1-3, ``head.layer4.*``,
``projector.*``, ``predictor.*``, ``momentum_encoder.*``) and the official
ones (``model`` with ``module.encoder.*``, a whole torchvision-named ResNet
whose ``layer4`` is the box head, ``module.projector.*``,
``module.predictor.*``, ``module.encoder_k.*``, ``module.projector_k.*`` and
the unused ``module.queue`` / ``module.queue_ptr``; ``SoCo_C4.py:42-70``).
The online ResNet is read, ``layer4`` marked as the res5 RoI head.
"""
import re
from collections import OrderedDict

from .checkpoint_io import CheckpointError
from .encoder_weights import RESNET_PREFIXES, EncoderWeights, register_reader

_FPN = re.compile(r'(lateral_convs|fpn_convs)\.(\d+)\.(conv|bn)\.(\w+)$')


def _read_fpn(key: str, value, fpn, name: str) -> None:
    # mmdet FPN with start_level 0: index i is the level of C(i + 2).
    match = _FPN.match(key)
    if match is None:
        raise CheckpointError(f'unexpected FPN tensor {name}')
    group, index, module, tensor = match.groups()
    kind = 'lateral' if group == 'lateral_convs' else 'output'
    part = 'conv' if module == 'conv' else 'norm'
    fpn.setdefault((kind, int(index) + 2), {}).setdefault(part, {})[tensor] = value


def _head_slot(head, index: int) -> dict:
    while len(head['convs']) <= index:
        head['convs'].append({'conv': {}, 'norm': {}})
    return head['convs'][index]


def _read(state, path, source, backbone_prefix, neck_prefix, head_prefix, head_key):
    backbone, fpn, dropped = OrderedDict(), {}, []
    head = {'convs': [], 'fc': {}}
    for name, value in state.items():
        if name.startswith(backbone_prefix) and name[len(backbone_prefix):].startswith(
                RESNET_PREFIXES):
            backbone[name[len(backbone_prefix):]] = value
        elif name.startswith(neck_prefix):
            _read_fpn(name[len(neck_prefix):], value, fpn, name)
        elif name.startswith(head_prefix):
            slot = head_key(name[len(head_prefix):])
            if slot is None:
                raise CheckpointError(f'unexpected box head tensor {name}')
            where, tensor = slot
            if where == 'fc':
                head['fc'][tensor] = value
            else:
                index, part = where
                _head_slot(head, index)[part][tensor] = value
        else:
            dropped.append(name)  # momentum copies, projector, predictor, preprocessor stats
    if not backbone:
        raise CheckpointError(f'{path}: no ResNet weights under {backbone_prefix}')
    return EncoderWeights(source, backbone, fpn, dropped, box_head=head)


def _ours_head_key(key: str):
    # convs.{i}.conv.weight, convs.{i}.bn.{norm tensor}, fc.{weight,bias}
    match = re.match(r'convs\.(\d+)\.(conv|bn)\.(\w+)$', key)
    if match:
        index, module, tensor = match.groups()
        return (int(index), 'conv' if module == 'conv' else 'norm'), tensor
    match = re.match(r'fc\.(weight|bias)$', key)
    return ('fc', match.group(1)) if match else None


def _official_head_key(key: str):
    # conv1-4.weight, bn1-4.{norm tensor}, fc1.{weight,bias}
    match = re.match(r'(conv|bn)([1-4])\.(\w+)$', key)
    if match:
        module, number, tensor = match.groups()
        return (int(number) - 1, 'conv' if module == 'conv' else 'norm'), tensor
    match = re.match(r'fc1\.(weight|bias)$', key)
    return ('fc', match.group(1)) if match else None


def _is_crosscl_mm_soco(state) -> bool:
    return any(k.startswith('head.convs.') for k in state) and \
        any(k.startswith('predictor.') for k in state)


def _is_official_soco(state) -> bool:
    return any(k.startswith('module.head.conv1.') for k in state) and \
        any(k.startswith('module.predictor.') for k in state)


@register_reader('crosscl_mm SoCo', _is_crosscl_mm_soco,
                 'backbone.*, neck.*, head.convs.*, predictor.*')
def read_crosscl_mm_soco(state, path):
    return _read(state, path, 'crosscl_mm SoCo', 'backbone.', 'neck.', 'head.', _ours_head_key)


@register_reader('official SoCo', _is_official_soco,
                 'module.encoder.*, module.neck.*, module.head.conv1-4, module.predictor.*')
def read_official_soco(state, path):
    return _read(state, path, 'official SoCo', 'module.encoder.', 'module.neck.', 'module.head.',
                 _official_head_key)


def _is_crosscl_mm_soco_c4(state) -> bool:
    return any(k.startswith('head.layer4.') for k in state) and \
        any(k.startswith('predictor.') for k in state) and \
        not any(k.startswith('neck.') for k in state)


def _is_official_soco_c4(state) -> bool:
    return any(k.startswith('module.encoder.layer4.') for k in state) and \
        any(k.startswith('module.predictor.') for k in state) and \
        not any(k.startswith(('module.neck.', 'module.head.')) for k in state)


def _read_c4(state, path, source, prefixes):
    """The online ResNet: the tensors under ``prefixes`` in torchvision names."""
    backbone, dropped = OrderedDict(), []
    for name, value in state.items():
        for prefix in prefixes:
            if name.startswith(prefix) and name[len(prefix):].startswith(RESNET_PREFIXES):
                backbone[name[len(prefix):]] = value
                break
        else:
            dropped.append(name)  # momentum copies, projector, predictor, queue
    if not any(k.startswith('layer4.') for k in backbone) or \
            not any(k.startswith('layer3.') for k in backbone):
        found = sorted({k.split('.')[0] for k in backbone})
        raise CheckpointError(f'{path}: a SoCo-C4 checkpoint needs the ResNet stages 1-3 and '
                              f'the res5 head (layer4); found {found}')
    return EncoderWeights(source, backbone, {}, dropped, res5_head=True)


@register_reader('crosscl_mm SoCo-C4', _is_crosscl_mm_soco_c4)
def read_crosscl_mm_soco_c4(state, path):
    return _read_c4(state, path, 'crosscl_mm SoCo-C4', ('backbone.', 'head.'))


@register_reader('official SoCo-C4', _is_official_soco_c4)
def read_official_soco_c4(state, path):
    return _read_c4(state, path, 'official SoCo-C4', ('module.encoder.',))
