"""Readers of released checkpoints whose encoder is a plain torchvision-named
ResNet (R50 or R101; the depth is read from the tensors, see
:func:`~crosscl_mm.converters.encoder_weights.resnet_depth`).

Four layouts, recognised by names that no other reader here accepts (a
checkpoint matches at most one of them, and none of crosscl_mm's own
checkpoints, which keep their backbone under ``backbone.`` and never have
``encoder_q``):

- **torchvision ResNet** (DetCo's ``detco_200ep.pth``, DenseCL's released
  backbones, a ``--to torchvision`` export, torchvision's own weights):
  ``state_dict`` (or the bare dict) of ResNet names only, no prefix, with an
  optional ``fc.*`` classifier, which is dropped.
- **MoCo v1/v2** (facebookresearch/moco ``main_moco.py``: the DDP model
  saved with ``epoch``, ``arch``, ``optimizer``): ``module.encoder_q.*`` in
  ResNet names plus the projection ``fc.*`` (``fc.0``/``fc.2`` with
  ``--mlp``), ``module.encoder_k.*``, ``module.queue``, ``module.queue_ptr``.
  A CrossCL release without its FPN has this layout too.
- **DenseCL / RegionCL-D** (github CoinCheung/DenseCL, the RegionCL-D code
  behind the seed's VOC rows: ``main_densecl.py:283-288``): the MoCo layout
  plus the dense head ``module.encoder_q.dense_head.{0,2}.*`` and
  ``module.queue_dense``; ``fc.*`` and ``dense_head.*`` are dropped.
- **OpenSelfSup MoCo-style** (github Annbless/RegionCL, the official
  RegionCL-M: ``RegionCLM.py:48``; OpenSelfSup's MoCo and DenseCL the same):
  ``encoder_q.0.*`` (the ResNet), ``encoder_q.1.*`` (the projection),
  ``encoder_k.*``, plain ``queue`` / ``queue_ptr`` buffers, and
  ``backbone.*``, a second registration of ``encoder_q.0`` (bug B8 of
  docs/regioncl.md): the two copies must be equal, and one is
  exported.

Only the online (query) ResNet is read; there is no FPN or box head in any
of them.
"""
from collections import OrderedDict

import torch

from .checkpoint_io import CheckpointError
from .encoder_weights import RESNET_PREFIXES, EncoderWeights, register_reader

_MODULE_Q = 'module.encoder_q.'
_OSS_Q = 'encoder_q.0.'


def _is_resnet(key: str) -> bool:
    return key.startswith(RESNET_PREFIXES)


def _has_complete_resnet(keys) -> bool:
    return 'conv1.weight' in keys and any(k.startswith('layer4.') for k in keys)


def _query_keys(state, prefix):
    return [k[len(prefix):] for k in state if k.startswith(prefix)]


def _is_torchvision(state) -> bool:
    return all(_is_resnet(k) or k.startswith('fc.') for k in state) and \
        _has_complete_resnet(state)


def _is_moco(state) -> bool:
    query = _query_keys(state, _MODULE_Q)
    return _has_complete_resnet(query) and \
        all(_is_resnet(k) or k.startswith('fc.') for k in query)


def _is_densecl(state) -> bool:
    query = _query_keys(state, _MODULE_Q)
    return _has_complete_resnet(query) and any(k.startswith('dense_head.') for k in query) and \
        all(_is_resnet(k) or k.startswith(('fc.', 'dense_head.')) for k in query)


def _is_openselfsup(state) -> bool:
    return _has_complete_resnet(_query_keys(state, _OSS_Q))


def _read_prefixed(state, path, source, prefix):
    """The ResNet under ``prefix``; everything else is dropped (the key
    encoder, the projection and dense heads, the queues)."""
    backbone, dropped = OrderedDict(), []
    for name, value in state.items():
        key = name[len(prefix):]
        if name.startswith(prefix) and _is_resnet(key):
            backbone[key] = value
        else:
            dropped.append(name)
    return EncoderWeights(source, backbone, {}, dropped)


@register_reader('torchvision-named ResNet (DetCo / DenseCL release)', _is_torchvision,
                 'conv1.*, bn1.*, layer1-4.* with no prefix (fc.* dropped)')
def read_torchvision(state, path):
    return _read_prefixed(state, path, 'torchvision-named ResNet (DetCo / DenseCL release)', '')


@register_reader('MoCo v1/v2', _is_moco,
                 'module.encoder_q.* in torchvision names, its fc.* projection dropped')
def read_moco(state, path):
    return _read_prefixed(state, path, 'MoCo v1/v2', _MODULE_Q)


@register_reader('DenseCL / RegionCL-D (CoinCheung/DenseCL)', _is_densecl,
                 'module.encoder_q.* with fc.* and dense_head.* dropped')
def read_densecl(state, path):
    return _read_prefixed(state, path, 'DenseCL / RegionCL-D (CoinCheung/DenseCL)', _MODULE_Q)


@register_reader('OpenSelfSup MoCo-style (official RegionCL-M)', _is_openselfsup,
                 'encoder_q.0.* (= backbone.*), encoder_q.1.*, encoder_k.*, queue')
def read_openselfsup(state, path):
    weights = _read_prefixed(state, path, 'OpenSelfSup MoCo-style (official RegionCL-M)', _OSS_Q)
    alias = OrderedDict((k[len('backbone.'):], v) for k, v in state.items()
                        if k.startswith('backbone.'))
    if alias:  # the same module registered twice: the copies cannot differ
        if set(alias) != set(weights.backbone):
            diff = sorted(set(alias) ^ set(weights.backbone))
            raise CheckpointError(f'{path}: backbone.* and encoder_q.0.* should be two copies of '
                                  f'one ResNet but hold different tensors (e.g. {diff[:3]})')
        for key, value in weights.backbone.items():
            if not torch.equal(alias[key], value):
                raise CheckpointError(f'{path}: backbone.{key} differs from encoder_q.0.{key} '
                                      f'(they should be two copies of one ResNet)')
    return weights
