"""Reader of checkpoints in detectron2's ResNet names: the ``.pkl`` files
written by the self-supervised releases' detectron2 converters, and a
detectron2 model's own state dict.

A ``.pkl`` is a plain pickle of numpy arrays, ``{'model': {name: ndarray},
'__author__': ..., 'matching_heuristics': True}``, which ``torch.load``
cannot read; :func:`~crosscl_mm.converters.load_checkpoint_safely` reads it
with an unpickler that admits numpy arrays and plain data only and gives
the arrays back as tensors. Layouts read here:

- a backbone: ``stem.conv1.*``, ``res{2-5}.{i}.conv{1,2,3}[.norm].*``,
  ``res{2-5}.{i}.shortcut[.norm].*`` (MoCo's / DetCo's
  ``convert-pretrain-to-detectron2.py``; SoCo's ``convert_detectron2_C4.py``;
  crosscl_mm's ``--to detectron2``), optionally under ``backbone.`` (a C4
  detector) or ``backbone.bottom_up.`` (an FPN detector), with a C4
  detector's res5 under ``roi_heads.res5.``;
- with an FPN: ``[backbone.]fpn_lateral{L}[.norm].*`` and
  ``[backbone.]fpn_output{L}[.norm].*`` (SoCo's ``convert_detectron2_Head.py``
  writes them without ``backbone.``, crosscl_mm with it);
- with a box head: ``[roi_heads.]box_head.conv{i}[.norm].*`` and
  ``box_head.fc1.*`` (SoCo's 4conv-1fc ``FastRCNNConvFCHead``).

Everything else (box predictor, RPN, the C4 extra norm, a 2fc box head) is
dropped and listed. Caffe2-named weights (detectron2's ImageNet
``R-50.pkl``: ``res2_0_branch2a_w``) are not this layout and are refused.
"""
import re
from collections import OrderedDict

from .checkpoint_io import CheckpointError
from .encoder_weights import NORM_KEYS, EncoderWeights, register_reader

_BACKBONE_PREFIXES = ('backbone.bottom_up.', 'backbone.', 'roi_heads.', '')
_STEM = re.compile(r'stem\.conv1\.(?:(norm)\.)?(\w+)$')
_BLOCK = re.compile(r'res([2-5])\.(\d+)\.(conv[123]|shortcut)\.(?:(norm)\.)?(\w+)$')
_FPN = re.compile(r'(?:backbone\.)?fpn_(lateral|output)([2-6])\.(?:(norm)\.)?(\w+)$')
_BOX_HEAD = re.compile(r'(?:roi_heads\.)?box_head\.(conv(\d+)|fc(\d+))\.(?:(norm)\.)?(\w+)$')


def _is_detectron2(state) -> bool:
    return any(k in state for k in ('stem.conv1.weight', 'backbone.stem.conv1.weight',
                                    'backbone.bottom_up.stem.conv1.weight'))


def _resnet_name(key: str):
    """torchvision's name of a detectron2 ResNet tensor (the inverse of
    ``encoder_weights._detectron2_backbone_name``), or None."""
    for prefix in _BACKBONE_PREFIXES:
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix):]
        if prefix == 'roi_heads.' and not rest.startswith('res5.'):
            return None  # only a C4 detector's res5 lives under roi_heads
        stem = _STEM.match(rest)
        if stem:
            norm, tensor = stem.groups()
            return f'bn1.{tensor}' if norm else f'conv1.{tensor}'
        block = _BLOCK.match(rest)
        if block:
            stage, index, module, norm, tensor = block.groups()
            if module == 'shortcut':
                module = 'downsample.1' if norm else 'downsample.0'
            elif norm:
                module = 'bn' + module[-1]
            return f'layer{int(stage) - 1}.{index}.{module}.{tensor}'
    return None


@register_reader('detectron2 ResNet (.pkl)', _is_detectron2,
                 'stem.conv1.*, res2-5.* [+ fpn_lateral/fpn_output, box_head.conv1-4/fc1]')
def read_detectron2(state, path):
    backbone, fpn, dropped = OrderedDict(), {}, []
    convs, fc = {}, {}
    for name, value in state.items():
        resnet = _resnet_name(name)
        fpn_match = _FPN.match(name)
        head_match = _BOX_HEAD.match(name)
        if resnet is not None:
            if resnet in backbone:
                raise CheckpointError(f'{path}: {name} and another tensor both map to {resnet}')
            backbone[resnet] = value
        elif fpn_match:
            kind, level, norm, tensor = fpn_match.groups()
            if norm and tensor not in NORM_KEYS:
                raise CheckpointError(f'{path}: unexpected FPN tensor {name}')
            part = 'norm' if norm else 'conv'
            fpn.setdefault((kind, int(level)), {}).setdefault(part, {})[tensor] = value
        elif head_match:
            _, conv, fc_index, norm, tensor = head_match.groups()
            if conv:
                convs.setdefault(int(conv), {'conv': {}, 'norm': {}})[
                    'norm' if norm else 'conv'][tensor] = value
            else:
                fc.setdefault(int(fc_index), {})[tensor] = value
        else:
            dropped.append(name)
    if not any(k.startswith('layer4.') for k in backbone):
        raise CheckpointError(f'{path}: detectron2 names without res5 (the ResNet stages are '
                              f'incomplete)')
    box_head = None
    # The intermediate holds a conv head with one fc (SoCo's 4conv-1fc); a
    # 2fc head (detectron2's default FPN box head) has no counterpart there.
    if convs and sorted(convs) == list(range(1, len(convs) + 1)) and sorted(fc) == [1]:
        box_head = {'convs': [convs[i] for i in sorted(convs)], 'fc': fc[1]}
    else:
        dropped += [f'box_head.conv{i}' for i in sorted(convs)] + \
            [f'box_head.fc{i}' for i in sorted(fc)]
    return EncoderWeights('detectron2 ResNet (.pkl)', backbone, fpn, dropped, box_head=box_head)
