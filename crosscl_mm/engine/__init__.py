from .hooks import DetPreciseBNHook, FiniteLossHook, GlobalViewBNHook, MultiScaleTrainingHook
from .optimizers import Detectron2OptimWrapperConstructor, LARS, MixedPrecisionOptimWrapper

__all__ = ['DetPreciseBNHook', 'Detectron2OptimWrapperConstructor', 'FiniteLossHook',
           'GlobalViewBNHook', 'LARS', 'MixedPrecisionOptimWrapper', 'MultiScaleTrainingHook']
