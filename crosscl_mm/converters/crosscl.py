"""Readers of CrossCL pretraining checkpoints.

Two inputs are recognised:

- crosscl_mm checkpoints (``state_dict`` with ``backbone.*``, ``neck.*``,
  ``fpn.*`` and ``momentum_encoder.*``);
- official CrossCL releases (``state_dict`` with ``module.encoder_q.*`` in
  torchvision ResNet names, ``fpn_lateral{3,4,5}``, ``fpn_output{3,4}``, and
  ``fpn_lateralN.0/.1`` conv/norm pairs for the ``--fpn-bn`` variant).

Only the online (query) encoder is read.
"""
from collections import OrderedDict

from .checkpoint_io import CheckpointError
from .encoder_weights import NORM_KEYS, RESNET_PREFIXES, EncoderWeights, register_reader


def _split_fpn_official(name: str, value, fpn, kind: str, level: int, rest: str):
    # plain: fpn_lateral3.weight; with --fpn-bn: fpn_lateral3.0.weight (conv), .1.* (norm)
    part, _, key = rest.partition('.')
    if part in ('weight', 'bias'):
        fpn.setdefault((kind, level), {}).setdefault('conv', {})[part] = value
    elif part == '0':
        fpn.setdefault((kind, level), {}).setdefault('conv', {})[key] = value
    elif part == '1' and key in NORM_KEYS:
        fpn.setdefault((kind, level), {}).setdefault('norm', {})[key] = value
    else:
        raise CheckpointError(f'unexpected FPN tensor {name}')


def _is_official(state) -> bool:
    # The FPN tells a CrossCL release from MoCo's module.encoder_q.* layout
    # (released_resnets.py), which a release without an FPN shares.
    return any(k.startswith('module.encoder_q.fpn_') for k in state)


def _is_crosscl_mm(state) -> bool:
    # CrossCL's own modules: the global projection and the queue beside the
    # backbone (the FPN is absent in the global-only ablation). OpenSelfSup's
    # layout also has backbone.*, beside encoder_q.* (released_resnets.py).
    return any(k.startswith('backbone.') for k in state) and \
        any(k.startswith(('queue.', 'neck.', 'fpn.')) for k in state) and \
        not any(k.startswith('encoder_q.') for k in state)


@register_reader('official CrossCL', _is_official,
                 'module.encoder_q.* in torchvision names with fpn_lateral*/fpn_output*')
def read_official_crosscl(state, path):
    backbone, fpn, dropped = OrderedDict(), {}, []
    for name, value in state.items():
        if not name.startswith('module.encoder_q.'):
            dropped.append(name)
            continue
        key = name[len('module.encoder_q.'):]
        if key.startswith(RESNET_PREFIXES):
            backbone[key] = value
        elif key.startswith(('fpn_lateral', 'fpn_output')):
            kind = 'lateral' if key.startswith('fpn_lateral') else 'output'
            head, _, rest = key.partition('.')
            _split_fpn_official(name, value, fpn, kind, int(head[-1]), rest)
        else:
            dropped.append(name)  # the global projection (fc.*)
    if not backbone:
        raise CheckpointError(f'{path}: no ResNet weights under module.encoder_q.')
    return EncoderWeights('official CrossCL', backbone, fpn, dropped)


@register_reader('crosscl_mm CrossCL', _is_crosscl_mm,
                 'backbone.* with neck.*, fpn.* or queue.*')
def read_crosscl_mm(state, path):
    backbone, fpn, dropped = OrderedDict(), {}, []
    for name, value in state.items():
        if name.startswith('backbone.'):
            backbone[name[len('backbone.'):]] = value
        elif name.startswith('fpn.'):
            # fpn.lateral_convs.{i}.conv.weight, i = 0, 1, 2 for C3, C4, C5
            _, group, idx, module, key = name.split('.', 4)
            kind = 'lateral' if group == 'lateral_convs' else 'output'
            part = 'conv' if module == 'conv' else 'norm'
            fpn.setdefault((kind, int(idx) + 3), {}).setdefault(part, {})[key] = value
        else:
            dropped.append(name)  # momentum encoder, projection, queue, preprocessor stats
    return EncoderWeights('crosscl_mm', backbone, fpn, dropped)
