from .multi_scale_training import MultiScaleTrainingHook

__all__ = ['MultiScaleTrainingHook']
