from .hooks import DetPreciseBNHook, FiniteLossHook, MultiScaleTrainingHook
from .optimizers import LARS

__all__ = ['DetPreciseBNHook', 'FiniteLossHook', 'LARS', 'MultiScaleTrainingHook']
