from .finite_loss import FiniteLossHook
from .global_view_bn import GlobalViewBNHook
from .multi_scale_training import MultiScaleTrainingHook
from .precise_bn import DetPreciseBNHook

__all__ = ['DetPreciseBNHook', 'FiniteLossHook', 'GlobalViewBNHook', 'MultiScaleTrainingHook']
