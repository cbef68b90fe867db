"""Converting pretraining checkpoints for detection: one format-neutral
intermediate, one reader per algorithm, one writer per target.

A reader (``converters/<algorithm>.py``, registered with
:func:`register_reader`) recognises its checkpoints and reads the online
encoder into :class:`EncoderWeights`: the ResNet in torchvision names and,
where pretrained, the FPN per level and the box head. A target
(:data:`TARGETS`) renames those tensors for mmdet, detectron2 or torchvision.
"""
import pickle
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import torch

from .checkpoint_io import CheckpointError

RESNET_PREFIXES = ('conv1.', 'bn1.', 'layer1.', 'layer2.', 'layer3.', 'layer4.')
NORM_KEYS = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')


@dataclass
class EncoderWeights:
    """The online encoder in a format-neutral form: ``backbone`` in
    torchvision ResNet names, ``fpn`` per ``(kind, level)`` with kind
    ``'lateral'`` or ``'output'`` and level the input stage (3 for C3), each
    ``{'conv': {...}, 'norm': {...}}``; ``box_head``, where pretrained (SoCo),
    the shared convs and fc of a detector's box head:
    ``{'convs': [{'conv': {...}, 'norm': {...}}, ...], 'fc': {...}}``;
    ``res5_head``: the backbone's ``layer4`` was pretrained as the RoI box
    head on C4 (SoCo-C4), so by default it is exported as a C4 detector's
    res5 RoI head (:func:`convert`'s ``c4``)."""
    source: str
    backbone: 'OrderedDict[str, torch.Tensor]'
    fpn: Dict[Tuple[str, int], Dict[str, Dict[str, torch.Tensor]]]
    dropped: List[str] = field(default_factory=list)
    box_head: Optional[Dict] = None
    res5_head: bool = False


# torchvision's ResNets by their number of blocks in layer3 and whether the
# blocks are bottlenecks (conv3): torchvision/models/resnet.py resnet18-152.
_DEPTHS = {(2, False): 18, (6, False): 34, (6, True): 50, (23, True): 101, (36, True): 152}


def resnet_depth(backbone: Dict[str, torch.Tensor]) -> Optional[int]:
    """The depth of a ResNet in torchvision names, from layer3's block count
    (None when it is no torchvision ResNet depth)."""
    blocks = {int(k.split('.')[1]) for k in backbone if k.startswith('layer3.')}
    bottleneck = any(k.startswith('layer3.0.conv3.') for k in backbone)
    return _DEPTHS.get((len(blocks), bottleneck)) if blocks == set(range(len(blocks))) else None


@dataclass
class Conversion:
    state_dict: 'OrderedDict[str, torch.Tensor]'
    renamed: List[Tuple[str, str]]
    dropped: List[str]
    not_pretrained: List[str]
    source: str = ''
    depth: Optional[int] = None

    def summary(self) -> str:
        lines = []
        if self.source:
            arch = f'ResNet-{self.depth}' if self.depth else 'a ResNet of unknown depth'
            lines.append(f'read as: {self.source}, {arch}')
        lines.append(f'exported {len(self.state_dict)} tensors, dropped {len(self.dropped)}, '
                     f'renamed {sum(a != b for a, b in self.renamed)}')
        if self.dropped:
            groups = sorted({k.rsplit('.', 2)[0] for k in self.dropped})
            lines.append('dropped (no counterpart in the target): ' + ', '.join(groups[:12])
                         + (' ...' if len(groups) > 12 else ''))
        if self.not_pretrained:
            lines.append('left to the target\'s own init: ' + ', '.join(self.not_pretrained))
        return '\n'.join(lines)


def tensor_dict(ckpt, path: str) -> Dict[str, torch.Tensor]:
    """The checkpoint's ``state_dict`` (``model`` in official SoCo files and
    detectron2 ``.pkl`` files, ``blobs`` in Caffe2-named ones; or the
    checkpoint itself when it is one), refused unless it maps names to
    tensors."""
    if isinstance(ckpt, dict) and isinstance(ckpt.get('state_dict'), dict):
        state = ckpt['state_dict']
    elif isinstance(ckpt, dict) and isinstance(ckpt.get('model'), dict):
        state = ckpt['model']
    elif isinstance(ckpt, dict) and isinstance(ckpt.get('blobs'), dict):
        state = ckpt['blobs']  # a Detectron/Caffe2 .pkl (detectron2's ImageNet R-50.pkl)
    elif isinstance(ckpt, dict) and ckpt and all(isinstance(k, str) for k in ckpt):
        state = ckpt
    else:
        raise CheckpointError(f'{path}: expected a dict with a "state_dict", got {type(ckpt).__name__}')
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad or not state:
        raise CheckpointError(f'{path}: "state_dict" must map names to tensors '
                              f'(offending keys: {bad[:3]})')
    return state


# name -> (recognises(state_dict) -> bool, read(state_dict, path) -> EncoderWeights)
READERS: Dict[str, Tuple[Callable, Callable]] = {}
# name -> the tensor names that make the layout, for the refusal message
LAYOUTS: Dict[str, str] = {}


def register_reader(name: str, recognises: Callable[[Dict[str, torch.Tensor]], bool],
                    layout: Optional[str] = None):
    """Register ``read(state_dict, path) -> EncoderWeights`` for the
    checkpoints that ``recognises(state_dict)`` accepts; ``layout`` says in a
    few words which names make it (shown when a checkpoint is refused).
    Readers are tried in registration order (``converters/__init__.py``) and
    the first that recognises a checkpoint reads it."""
    def decorator(read):
        READERS[name] = (recognises, read)
        if layout:
            LAYOUTS[name] = layout
        return read
    return decorator


def _key_prefixes(state, shown: int = 6) -> str:
    """'module.encoder.* (320), queue (1), ...': what a checkpoint holds."""
    counts: Dict[str, int] = {}
    for key in state:
        parts = key.split('.')
        prefix = '.'.join(parts[:2]) if parts[0] == 'module' and len(parts) > 2 else parts[0]
        prefix += '.*' if prefix != key else ''
        counts[prefix] = counts.get(prefix, 0) + 1
    found = [f'{p} ({n})' for p, n in counts.items()]
    return ', '.join(found[:shown]) + (f', ... ({len(found) - shown} more)'
                                       if len(found) > shown else '')


def read_backbone_only(state, path: str, source: str) -> EncoderWeights:
    """The ResNet under ``backbone.*`` (prefix stripped) as the whole encoder,
    for algorithms that pretrain no FPN or box head (DetCo, RegionCL);
    everything else is dropped. Refused without ``layer4``."""
    backbone, dropped = OrderedDict(), []
    for name, value in state.items():
        if name.startswith('backbone.'):
            backbone[name[len('backbone.'):]] = value
        else:
            dropped.append(name)  # heads, momentum encoder, queues, preprocessor stats
    if not any(k.startswith('layer4.') for k in backbone):
        raise CheckpointError(f'{path}: a {source} checkpoint without backbone.layer4 '
                              f'(the ResNet stages are incomplete)')
    return EncoderWeights(source, backbone, {}, dropped)


def read_pretrained_checkpoint(ckpt, path: str = '<checkpoint>') -> EncoderWeights:
    """Recognise the checkpoint's algorithm and format and read its online
    encoder; a layout no reader recognises is refused with what the file
    holds and what is accepted."""
    state = tensor_dict(ckpt, path)
    for recognises, read in READERS.values():
        if recognises(state):
            return read(state, path)
    accepted = '\n'.join(f'  - {name}' + (f': {LAYOUTS[name]}' if name in LAYOUTS else '')
                          for name in READERS)
    raise CheckpointError(
        f'{path}: not a checkpoint of a known pretraining (an unknown layout). '
        f'Found {len(state)} tensors: {_key_prefixes(state)}.\nAccepted layouts:\n{accepted}')


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


def _fpn_convs_not_pretrained(w: EncoderWeights, name) -> List[str]:
    """The convs of a standard C2-C5 FPN that the checkpoint does not have."""
    missing = [name(kind, level) for level in (2, 3, 4, 5) for kind in ('lateral', 'output')
               if (kind, level) not in w.fpn]
    return [f'FPN {", ".join(missing)} (not pretrained)'] if missing else []


def _whole_fpn_not_exported(w: EncoderWeights) -> List[str]:
    # A checkpoint without an FPN (MoCo-style, DetCo) has nothing for --with-fpn to export.
    return ['the whole FPN (use --with-fpn to export it)' if w.fpn else
            'the whole FPN (not pretrained: the checkpoint has none)']


def _add_box_head(w: EncoderWeights, with_box_head: bool, conv_name, norm_name, fc_name,
                  out, renamed, dropped) -> List[str]:
    """Add the box head's tensors under the target's names (``conv_name(i)``,
    ``norm_name(i)``, ``fc_name``: prefixes of conv ``i``, its norm and the
    fc) or drop them; returns what the target keeps of its own init."""
    tensors = []
    if w.box_head is not None:
        for i, conv in enumerate(w.box_head['convs']):
            tensors += [(f'box_head.convs.{i}.conv.{k}', conv_name(i) + k, v)
                        for k, v in conv['conv'].items()]
            tensors += [(f'box_head.convs.{i}.norm.{k}', norm_name(i) + k, v)
                        for k, v in conv['norm'].items()]
        tensors += [(f'box_head.fc.{k}', fc_name + k, v) for k, v in w.box_head['fc'].items()]
    for src, dst, value in tensors:
        if with_box_head:
            out[dst] = value
            renamed.append((src, dst))
        else:
            dropped.append(src)
    if with_box_head and w.box_head is None:
        return ['RPN and RoI heads (the checkpoint has no box head)']
    if with_box_head:
        return ['RPN, the box head\'s classifier and regressor, the mask head']
    if w.box_head is not None:
        return ['RPN and RoI heads (use --with-box-head to export the pretrained box head)']
    return ['RPN and RoI heads']


def _mmdet_names(w: EncoderWeights, with_fpn: bool, with_box_head: bool = False):
    # mmdet's ResNet uses torchvision's names.
    out, renamed, dropped = _rename(w, lambda key: 'backbone.' + key,
                                    _mmdet_fpn_name if with_fpn else None)
    if with_fpn:
        not_pretrained = _fpn_convs_not_pretrained(
            w, lambda kind, level: _mmdet_fpn_name(kind, level, 'conv', '')[:-6])
    else:
        not_pretrained = _whole_fpn_not_exported(w)
    # Shared4Conv1FCBBoxHead: ConvModules named conv/bn, then shared_fcs.
    head = 'roi_head.bbox_head.'
    not_pretrained += _add_box_head(
        w, with_box_head, lambda i: f'{head}shared_convs.{i}.conv.',
        lambda i: f'{head}shared_convs.{i}.bn.', f'{head}shared_fcs.0.', out, renamed, dropped)
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


def _detectron2_names(w: EncoderWeights, with_fpn: bool, with_box_head: bool = False):
    out, renamed, dropped = _rename(w, _detectron2_backbone_name,
                                    _detectron2_fpn_name if with_fpn else None)
    not_pretrained = _fpn_convs_not_pretrained(w, lambda kind, level: f'fpn_{kind}{level}') \
        if with_fpn else _whole_fpn_not_exported(w)
    # FastRCNNConvFCHead: conv{i}, with its norm inside (conv{i}.norm), then fc1.
    head = 'roi_heads.box_head.'
    not_pretrained += _add_box_head(
        w, with_box_head, lambda i: f'{head}conv{i + 1}.', lambda i: f'{head}conv{i + 1}.norm.',
        f'{head}fc1.', out, renamed, dropped)
    return out, renamed, dropped, not_pretrained


def _torchvision_names(w: EncoderWeights, with_fpn: bool, with_box_head: bool = False):
    out, renamed, dropped = _rename(w, lambda key: key)
    _add_box_head(w, False, None, None, None, out, renamed, dropped)
    return out, renamed, dropped, ['fc (the classifier)']


TARGETS = dict(mmdet=_mmdet_names, detectron2=_detectron2_names, torchvision=_torchvision_names)


def _c4_names(w: EncoderWeights, backbone_name, res5_name):
    """A C4 detector's layout: stages 1-3 in its backbone, ``layer4`` as its
    res5 RoI head (``res5_name(key)`` for the keys under ``layer4.``)."""
    out, renamed = OrderedDict(), []
    for key, value in w.backbone.items():
        dst = res5_name(key) if key.startswith('layer4.') else backbone_name(key)
        out[dst] = value
        renamed.append((key, dst))
    not_pretrained = ['RPN, the box predictor and the mask head']
    if not any(key.startswith('layer4.') for key in w.backbone):
        not_pretrained.append('the res5 RoI head (the checkpoint has no layer4)')
    return out, renamed, list(w.dropped), not_pretrained


# A C4 detector: mmdet's Mask/Faster R-CNN R50-C4 (ResNet num_stages=3 and the
# roi_head.shared_head ResLayer, whose stage is named layer4), detectron2's
# Res5ROIHeads (roi_heads.res5.*; its ExtraNorm variant's roi_heads.res5.norm is
# not pretrained). The official SoCo-C4 converter writes res5.* beside the
# backbone (converter_detectron2/convert_detectron2_C4.py:29-40), which
# detectron2's matching heuristics put into roi_heads.res5 by suffix.
C4_TARGETS = dict(
    mmdet=lambda w: _c4_names(w, lambda key: 'backbone.' + key,
                              lambda key: 'roi_head.shared_head.' + key),
    detectron2=lambda w: _c4_names(w, _detectron2_backbone_name,
                                   lambda key: 'roi_heads.' + _detectron2_backbone_name(key)))


def convert(ckpt, to: str, with_fpn: bool = False, path: str = '<checkpoint>',
            with_box_head: bool = False, c4: Optional[bool] = None) -> Conversion:
    """Convert a loaded checkpoint to ``to`` in {'mmdet', 'detectron2', 'torchvision'};
    ``with_box_head`` exports a pretrained box head (SoCo) too. ``c4`` writes
    the C4 detector layout (``layer4`` as the res5 RoI head, :data:`C4_TARGETS`);
    None: where the checkpoint pretrained ``layer4`` as that head (SoCo-C4).
    A torchvision ResNet has no such split: its layout is the same either way."""
    if to not in TARGETS:
        raise ValueError(f'--to must be one of {sorted(TARGETS)}, got {to!r}')
    weights = read_pretrained_checkpoint(ckpt, path)
    c4 = weights.res5_head if c4 is None else c4
    if c4 and to in C4_TARGETS:
        if with_fpn or with_box_head:
            raise CheckpointError(f'{path}: the C4 layout has no FPN and its box head is res5; '
                                  f'--with-fpn / --with-box-head do not apply (or pass --no-c4)')
        state, renamed, dropped, not_pretrained = C4_TARGETS[to](weights)
    else:
        state, renamed, dropped, not_pretrained = TARGETS[to](weights, with_fpn, with_box_head)
    state = OrderedDict((k, v.detach().clone().contiguous()) for k, v in state.items())
    return Conversion(state, renamed, dropped, not_pretrained, weights.source,
                      resnet_depth(weights.backbone))


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


# Which pretraining method's leaf a checkpoint read by a reader belongs to,
# for tools/benchmarks/transfer.py: reader name -> the methods, best first.
# A plain ResNet (a torchvision-named release, MoCo's layout, a detectron2
# .pkl) could be any backbone-only method's: the user says which.
BACKBONE_ONLY_METHODS = ('crosscl', 'detco', 'densecl', 'mocov2', 'regioncl-m', 'regioncl-d')
_READER_METHODS = {  # reader -> (methods, whether the layout tells the method)
    'official CrossCL': (('crosscl-fpn', 'crosscl'), True),
    'crosscl_mm CrossCL': (('crosscl-fpn', 'crosscl'), True),
    'crosscl_mm SoCo': (('soco-fpn',), True),
    'official SoCo': (('soco-fpn',), True),
    'crosscl_mm SoCo-C4': (('soco-c4',), True),
    'official SoCo-C4': (('soco-c4',), True),
    'crosscl_mm DetCo': (('detco',), True),
    'OpenSelfSup MoCo-style (official RegionCL-M)': (('regioncl-m',), True),
    # A CrossCL release without its FPN has MoCo's layout too.
    'MoCo v1/v2': (('mocov2', 'crosscl'), False),
    'DenseCL / RegionCL-D (CoinCheung/DenseCL)': (('densecl', 'regioncl-d'), False),
}


@dataclass
class CheckpointIdentity:
    """What a checkpoint is: the reader that recognised it, the source it
    reports, the ResNet depth, what it pretrained beside the backbone, and
    the pretraining methods whose leaf configs it fits (``exact``: the
    layout tells the method; otherwise any of ``methods`` may have written
    it)."""
    reader: str
    source: str
    depth: Optional[int]
    has_fpn: bool
    has_box_head: bool
    res5_head: bool
    methods: Tuple[str, ...]
    exact: bool

    def describe(self) -> str:
        arch = f'ResNet-{self.depth}' if self.depth else 'a ResNet of unknown depth'
        parts = [p for p, has in (('FPN', self.has_fpn), ('box head', self.has_box_head),
                                  ('res5 RoI head', self.res5_head)) if has]
        return f'{self.source}, {arch}' + (f' with {", ".join(parts)}' if parts else '')


def identify_checkpoint(path: str, ckpt=None) -> CheckpointIdentity:
    """Recognise the checkpoint at ``path`` (or the loaded ``ckpt``) with the
    converter's readers (:func:`read_pretrained_checkpoint`) and say what it
    holds; an unreadable or unknown file raises CheckpointError."""
    if ckpt is None:
        from .checkpoint_io import load_checkpoint_safely
        ckpt = load_checkpoint_safely(path)
    state = tensor_dict(ckpt, path)
    reader = next((name for name, (recognises, _) in READERS.items() if recognises(state)), None)
    weights = read_pretrained_checkpoint(ckpt, path)
    if reader == 'crosscl_mm RegionCL':
        methods, exact = (('regioncl-d', 'densecl') if 'RegionCL-D' in weights.source
                          else ('regioncl-m',)), 'RegionCL-M' in weights.source
    elif reader == 'detectron2 ResNet (.pkl)' and weights.box_head is not None:
        methods, exact = ('soco-fpn',), True
    elif reader in _READER_METHODS:
        methods, exact = _READER_METHODS[reader]
        if methods[0] == 'crosscl-fpn' and not weights.fpn:
            methods = ('crosscl',)
    else:
        methods, exact = BACKBONE_ONLY_METHODS, False
    return CheckpointIdentity(reader or '', weights.source, resnet_depth(weights.backbone),
                              bool(weights.fpn), weights.box_head is not None,
                              weights.res5_head, methods, exact)
