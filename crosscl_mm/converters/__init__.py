from crosscl_mm.utils.files import save_atomically

from .checkpoint_io import CheckpointError, load_checkpoint_safely
from .crosscl import Conversion, convert, read_crosscl_checkpoint

__all__ = ['CheckpointError', 'load_checkpoint_safely', 'save_atomically', 'Conversion',
           'convert', 'read_crosscl_checkpoint']
