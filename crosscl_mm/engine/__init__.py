from .hooks import FiniteLossHook, MultiScaleTrainingHook
from .optimizers import LARS

__all__ = ['FiniteLossHook', 'LARS', 'MultiScaleTrainingHook']
