from crosscl_mm.utils.files import save_atomically

from .checkpoint_io import CheckpointError, load_checkpoint_safely
from .encoder_weights import (Conversion, EncoderWeights, convert, read_pretrained_checkpoint,
                              register_reader, serialise)
# SoCo's readers first: its checkpoints also hold backbone.* and neck.*, which
# CrossCL's reader would take; SoCo's recognise the box head and predictor only.
from . import soco  # noqa: E402,F401,I100  (registers its readers)
from . import crosscl  # noqa: E402,F401  (registers its readers)
from . import detco  # noqa: E402,F401
# Released layouts with no algorithm of their own here; their recognisers
# exclude every other reader's checkpoints, so their place in the order is free.
from . import released_resnets  # noqa: E402,F401
from . import detectron2_pickle  # noqa: E402,F401

__all__ = ['CheckpointError', 'load_checkpoint_safely', 'save_atomically', 'Conversion',
           'EncoderWeights', 'convert', 'read_pretrained_checkpoint', 'register_reader',
           'serialise']
