"""Reader of RegionCL pretraining checkpoints written by crosscl_mm.

A crosscl_mm RegionCL checkpoint (RegionCL-M or RegionCL-D, and the DenseCL
of ``configs/densecl_r101_200e_in1k.py``) is recognised by its queue of
instance keys, ``instance_queue.*``, which no other algorithm here has, beside
``backbone.*``. The released RegionCL layouts cannot match: the official
RegionCL-M file has ``encoder_q.0.*``, ``backbone.*`` and a bare ``queue``;
the third-party RegionCL-D file has ``module.encoder_q.*`` and
``module.queue``. Only the online (query) ResNet is exported: neither
RegionCL variant pretrains an FPN or a box head, and their projection heads
(``neck.*``, ``dense_neck.*``) have no counterpart in a detector.
"""
from .encoder_weights import read_backbone_only, register_reader


def _is_regioncl_mm(state) -> bool:
    return any(k.startswith('instance_queue.') for k in state) and \
        any(k.startswith('backbone.') for k in state)


@register_reader('crosscl_mm RegionCL', _is_regioncl_mm)
def read_regioncl_mm(state, path):
    variant = 'RegionCL-D' if any(k.startswith('dense_neck.') for k in state) else 'RegionCL-M'
    return read_backbone_only(state, path, f'crosscl_mm {variant}')
