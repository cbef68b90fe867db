from .hooks import DetPreciseBNHook, FiniteLossHook, MultiScaleTrainingHook
from .optimizers import LARS, MixedPrecisionOptimWrapper

__all__ = ['DetPreciseBNHook', 'FiniteLossHook', 'LARS', 'MixedPrecisionOptimWrapper',
           'MultiScaleTrainingHook']
