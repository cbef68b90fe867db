from .hooks import FiniteLossHook, MultiScaleTrainingHook
from .optimizers import LARS, MixedPrecisionOptimWrapper

__all__ = ['FiniteLossHook', 'LARS', 'MixedPrecisionOptimWrapper', 'MultiScaleTrainingHook']
