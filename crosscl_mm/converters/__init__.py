from .checkpoint_io import CheckpointError, load_checkpoint_safely, save_atomically
from .crosscl import Conversion, convert, read_crosscl_checkpoint

__all__ = ['CheckpointError', 'load_checkpoint_safely', 'save_atomically', 'Conversion',
           'convert', 'read_crosscl_checkpoint']
