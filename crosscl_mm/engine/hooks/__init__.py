from .finite_loss import FiniteLossHook
from .multi_scale_training import MultiScaleTrainingHook

__all__ = ['FiniteLossHook', 'MultiScaleTrainingHook']
