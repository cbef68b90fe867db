from .finite_loss import FiniteLossHook
from .multi_scale_training import MultiScaleTrainingHook
from .precise_bn import DetPreciseBNHook

__all__ = ['DetPreciseBNHook', 'FiniteLossHook', 'MultiScaleTrainingHook']
