from .hooks import DetPreciseBNHook, FiniteLossHook, MultiScaleTrainingHook

__all__ = ['DetPreciseBNHook', 'FiniteLossHook', 'MultiScaleTrainingHook']
