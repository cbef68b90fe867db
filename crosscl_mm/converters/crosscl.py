"""Convert CrossCL pretraining checkpoints for detection.

Two inputs are recognised automatically:

- crosscl_mm checkpoints (``state_dict`` with ``backbone.*``, ``neck.*``,
  ``fpn.*`` and ``momentum_encoder.*``);
- official CrossCL releases (``state_dict`` with ``module.encoder_q.*`` in
  torchvision ResNet names, ``fpn_lateral{3,4,5}``, ``fpn_output{3,4}``, and
  ``fpn_lateralN.0/.1`` conv/norm pairs for the ``--fpn-bn`` variant).

Only the online (query) encoder is exported. Both are first read into one
intermediate form: the ResNet in torchvision names, and per FPN level a conv
(``weight``, optional ``bias``) and an optional norm.
"""
import pickle
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch

from .checkpoint_io import CheckpointError

RESNET_PREFIXES = ('conv1.', 'bn1.', 'layer1.', 'layer2.', 'layer3.', 'layer4.')
NORM_KEYS = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')


@dataclass
class EncoderWeights:
    """The online encoder in a format-neutral form."""
    source: str
    backbone: 'OrderedDict[str, torch.Tensor]'
    # (kind, level) -> {'conv': {...}, 'norm': {...}}; kind is 'lateral' or 'output'.
    fpn: Dict[Tuple[str, int], Dict[str, Dict[str, torch.Tensor]]]
    dropped: List[str] = field(default_factory=list)


@dataclass
class Conversion:
    state_dict: 'OrderedDict[str, torch.Tensor]'
    renamed: List[Tuple[str, str]]
    dropped: List[str]
    not_pretrained: List[str]

    def summary(self) -> str:
        lines = [f'exported {len(self.state_dict)} tensors, dropped {len(self.dropped)}, '
                 f'renamed {sum(a != b for a, b in self.renamed)}']
        if self.dropped:
            groups = sorted({k.rsplit('.', 2)[0] for k in self.dropped})
            lines.append('dropped (no counterpart in the target): ' + ', '.join(groups[:12])
                         + (' ...' if len(groups) > 12 else ''))
        if self.not_pretrained:
            lines.append('left to the target\'s own init: ' + ', '.join(self.not_pretrained))
        return '\n'.join(lines)


def _tensor_dict(ckpt, path):
    if isinstance(ckpt, dict) and isinstance(ckpt.get('state_dict'), dict):
        state = ckpt['state_dict']
    elif isinstance(ckpt, dict) and ckpt and all(isinstance(k, str) for k in ckpt):
        state = ckpt
    else:
        raise CheckpointError(f'{path}: expected a dict with a "state_dict", got {type(ckpt).__name__}')
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad or not state:
        raise CheckpointError(f'{path}: "state_dict" must map names to tensors '
                              f'(offending keys: {bad[:3]})')
    return state


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


def read_crosscl_checkpoint(ckpt, path: str = '<checkpoint>') -> EncoderWeights:
    """Recognise the checkpoint format and read its online encoder."""
    state = _tensor_dict(ckpt, path)
    if any(k.startswith('module.encoder_q.') for k in state):
        return _read_official(state, path)
    if any(k.startswith('backbone.') for k in state):
        return _read_crosscl_mm(state, path)
    raise CheckpointError(
        f'{path}: not a CrossCL checkpoint: found neither "backbone.*" (crosscl_mm) nor '
        f'"module.encoder_q.*" (official release) keys; first keys: {list(state)[:5]}')


def _read_official(state, path):
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


def _read_crosscl_mm(state, path):
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


def _rename(w: EncoderWeights, backbone_name, fpn_name=None):
    """Rename the backbone with ``backbone_name(key)`` and each FPN tensor with
    ``fpn_name(kind, level, part, key)``; ``fpn_name=None`` drops the FPN."""
    out, renamed = OrderedDict(), []
    for key, value in w.backbone.items():
        dst = backbone_name(key)
        out[dst] = value
        renamed.append((key, dst))
    dropped = list(w.dropped)
    for (kind, level), parts in sorted(w.fpn.items()):
        for part, tensors in parts.items():
            for key, value in tensors.items():
                src = f'fpn_{kind}{level}.{part}.{key}'
                if fpn_name is None:
                    dropped.append(src)
                    continue
                dst = fpn_name(kind, level, part, key)
                out[dst] = value
                renamed.append((src, dst))
    return out, renamed, dropped


def _mmdet_fpn_name(kind, level, part, key):
    # mmdet's FPN with start_level 0 indexes C2..C5 as 0..3; ConvModule names its norm 'bn'.
    group = 'lateral_convs' if kind == 'lateral' else 'fpn_convs'
    return f'neck.{group}.{level - 2}.{"conv" if part == "conv" else "bn"}.{key}'


def _mmdet_names(w: EncoderWeights, with_fpn: bool):
    # mmdet's ResNet uses torchvision's names.
    out, renamed, dropped = _rename(w, lambda key: 'backbone.' + key,
                                    _mmdet_fpn_name if with_fpn else None)
    not_pretrained = ['mmdet FPN level 0 (C2) lateral and output convs',
                      'FPN output conv of C5 (CrossCL has none)', 'RPN and RoI heads']
    if not with_fpn:
        not_pretrained.insert(0, 'the whole FPN (use --with-fpn to export it)')
    return out, renamed, dropped, not_pretrained


def _detectron2_backbone_name(key: str) -> str:
    if not key.startswith('layer'):
        key = 'stem.' + key
    for t in (1, 2, 3, 4):
        key = key.replace(f'layer{t}', f'res{t + 1}')
    for t in (1, 2, 3):
        key = key.replace(f'bn{t}', f'conv{t}.norm')
    return key.replace('downsample.0', 'shortcut').replace('downsample.1', 'shortcut.norm')


def _detectron2_fpn_name(kind, level, part, key):
    # detectron2's FPN: fpn_lateral3.weight, and with a norm fpn_lateral3.norm.*
    return f'backbone.fpn_{kind}{level}.' + (key if part == 'conv' else f'norm.{key}')


def _detectron2_names(w: EncoderWeights, with_fpn: bool):
    out, renamed, dropped = _rename(w, _detectron2_backbone_name,
                                    _detectron2_fpn_name if with_fpn else None)
    not_pretrained = ['fpn_lateral2/fpn_output2 and fpn_output5 (CrossCL has none)',
                      'RPN and RoI heads']
    return out, renamed, dropped, not_pretrained


def _torchvision_names(w: EncoderWeights, with_fpn: bool):
    out, renamed, dropped = _rename(w, lambda key: key)
    return out, renamed, dropped, ['fc (the classifier)']


TARGETS = dict(mmdet=_mmdet_names, detectron2=_detectron2_names, torchvision=_torchvision_names)


def convert(ckpt, to: str, with_fpn: bool = False, path: str = '<checkpoint>') -> Conversion:
    """Convert a loaded checkpoint to ``to`` in {'mmdet', 'detectron2', 'torchvision'}."""
    if to not in TARGETS:
        raise ValueError(f'--to must be one of {sorted(TARGETS)}, got {to!r}')
    weights = read_crosscl_checkpoint(ckpt, path)
    state, renamed, dropped, not_pretrained = TARGETS[to](weights, with_fpn)
    state = OrderedDict((k, v.detach().clone().contiguous()) for k, v in state.items())
    return Conversion(state, renamed, dropped, not_pretrained)


def serialise(conversion: Conversion, to: str, source: str, fileobj) -> None:
    """Write a converted state dict in the target's file format."""
    if to == 'detectron2':
        model = {k: v.numpy() for k, v in conversion.state_dict.items()}
        pickle.dump({'model': model, '__author__': 'crosscl_mm', 'matching_heuristics': True},
                    fileobj, protocol=pickle.HIGHEST_PROTOCOL)
    elif to == 'torchvision':
        torch.save(conversion.state_dict, fileobj)
    else:
        torch.save({'state_dict': conversion.state_dict,
                    'meta': {'converted_from': source, 'converter': 'crosscl_mm'}}, fileobj)
