"""Reader of DetCo pretraining checkpoints written by crosscl_mm.

A DetCo checkpoint is recognised by its local heads (``local_necks.*``, the
nine-patch projection of each stage), which no other algorithm here has.
Only the online (query) backbone is exported, with no FPN: the official DetCo
converter (xieenze/DetCo ``benchmarks/detection/convert-pretrain-to-detectron2.py``)
takes a backbone-only torchvision-style ``state_dict``, so detection
fine-tuning starts its FPN and heads from random init.
"""
from .encoder_weights import read_backbone_only, register_reader


def _is_detco_mm(state) -> bool:
    return any(k.startswith('local_necks.') for k in state) and \
        any(k.startswith('backbone.') for k in state)


@register_reader('crosscl_mm DetCo', _is_detco_mm, 'backbone.* with local_necks.*')
def read_detco_mm(state, path):
    return read_backbone_only(state, path, 'crosscl_mm DetCo')
