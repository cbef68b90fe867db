from .hooks import MultiScaleTrainingHook

__all__ = ['MultiScaleTrainingHook']
