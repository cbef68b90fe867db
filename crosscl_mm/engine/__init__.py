from .hooks import DetPreciseBNHook, FiniteLossHook, GlobalViewBNHook, MultiScaleTrainingHook
from .optimizers import LARS, MixedPrecisionOptimWrapper

__all__ = ['DetPreciseBNHook', 'FiniteLossHook', 'GlobalViewBNHook', 'LARS',
           'MixedPrecisionOptimWrapper', 'MultiScaleTrainingHook']
