from .hooks import FiniteLossHook, MultiScaleTrainingHook

__all__ = ['FiniteLossHook', 'MultiScaleTrainingHook']
