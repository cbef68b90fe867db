from .detectron2_constructor import Detectron2OptimWrapperConstructor, detectron2_param_groups
from .lars import LARS
from .mixed_precision import MixedPrecisionOptimWrapper, autocast_dtype

__all__ = ['Detectron2OptimWrapperConstructor', 'LARS', 'MixedPrecisionOptimWrapper',
           'autocast_dtype', 'detectron2_param_groups']
