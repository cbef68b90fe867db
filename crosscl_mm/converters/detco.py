"""Reader of DetCo pretraining checkpoints written by crosscl_mm.

A DetCo checkpoint is recognised by its local heads (``local_necks.*``, the
nine-patch projection of each stage), which no other algorithm here has.
Only the online (query) backbone is exported, with no FPN: the official DetCo
converter (xieenze/DetCo ``benchmarks/detection/convert-pretrain-to-detectron2.py``)
takes a backbone-only torchvision-style ``state_dict``, so detection
fine-tuning starts its FPN and heads from random init.
"""
from collections import OrderedDict

from .checkpoint_io import CheckpointError
from .encoder_weights import EncoderWeights, register_reader


def _is_detco_mm(state) -> bool:
    return any(k.startswith('local_necks.') for k in state) and \
        any(k.startswith('backbone.') for k in state)


@register_reader('crosscl_mm DetCo', _is_detco_mm, 'backbone.* with local_necks.*')
def read_detco_mm(state, path):
    backbone, dropped = OrderedDict(), []
    for name, value in state.items():
        if name.startswith('backbone.'):
            backbone[name[len('backbone.'):]] = value
        else:
            dropped.append(name)  # heads, momentum encoder, queues, preprocessor stats
    if not any(k.startswith('layer4.') for k in backbone):
        raise CheckpointError(f'{path}: a DetCo checkpoint without backbone.layer4 '
                              f'(the ResNet stages are incomplete)')
    return EncoderWeights('crosscl_mm DetCo', backbone, {}, dropped)
