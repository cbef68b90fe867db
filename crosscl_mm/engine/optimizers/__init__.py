from .lars import LARS
from .mixed_precision import MixedPrecisionOptimWrapper, autocast_dtype

__all__ = ['LARS', 'MixedPrecisionOptimWrapper', 'autocast_dtype']
