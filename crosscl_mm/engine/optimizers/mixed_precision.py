"""Mixed precision in the best dtype the device has."""
from typing import Optional, Tuple, Union

import torch
from mmengine.logging import print_log
from mmengine.optim import AmpOptimWrapper, OptimWrapper

from crosscl_mm.registry import OPTIM_WRAPPERS


def autocast_dtype(device_type: str, capability: Optional[Tuple[int, int]] = None) -> torch.dtype:
    """The autocast dtype for ``dtype='auto'``: bfloat16 where the device
    computes it natively, float16 otherwise.

    NVIDIA GPUs have bfloat16 tensor cores from compute capability 8.0
    (Ampere: A100, RTX 30xx; Hopper: H100, H200). Older ones (V100 7.0,
    T4 7.5) would emulate it slowly, so they get float16 (``torch.cuda.
    is_bf16_supported()`` answers True there when emulation is counted).
    CPU autocast is bfloat16 only.

    Args:
        device_type: ``'cuda'`` or ``'cpu'``.
        capability: ``(major, minor)`` of the CUDA device; read from the
            current device when omitted.
    """
    if device_type == 'cpu':
        return torch.bfloat16
    if device_type != 'cuda':
        raise ValueError(f"dtype='auto' knows devices 'cuda' and 'cpu', got {device_type!r}")
    if capability is None:
        capability = torch.cuda.get_device_capability()
    return torch.bfloat16 if tuple(capability) >= (8, 0) else torch.float16


@OPTIM_WRAPPERS.register_module()
class MixedPrecisionOptimWrapper(AmpOptimWrapper):
    """mmengine's :class:`AmpOptimWrapper` that picks its dtype by device:
    bfloat16 without loss scaling where bfloat16 is native, float16 with
    loss scaling otherwise.

    bfloat16 has float32's exponent range, so gradients do not underflow and
    need no loss scaling; leaving ``GradScaler`` out also removes its
    per-step read-back of the inf check (``GradScaler.step`` synchronises
    with the host to decide whether to skip the step). float16 keeps
    ``AmpOptimWrapper``'s scaler unchanged. On a machine without CUDA the
    wrapper runs bfloat16 CPU autocast (``AmpOptimWrapper`` itself refuses
    to be built there), which is how it is tested.

    Args:
        dtype: ``'auto'`` (:func:`autocast_dtype`), ``'bfloat16'`` or
            ``'float16'``.
        loss_scale: ``AmpOptimWrapper``'s ``loss_scale``, used for float16
            only.
        **kwargs: passed to :class:`OptimWrapper` (``optimizer``,
            ``clip_grad``, ``accumulative_counts``).
    """

    def __init__(self, dtype: Union[str, torch.dtype] = 'auto',
                 loss_scale: Union[str, float, dict] = 'dynamic', **kwargs) -> None:
        device_type = 'cuda' if torch.cuda.is_available() else 'cpu'
        if dtype == 'auto':
            dtype = autocast_dtype(device_type)
        elif isinstance(dtype, str):
            if dtype not in ('bfloat16', 'float16'):
                raise ValueError(f"optim_wrapper.dtype must be 'auto', 'bfloat16' or 'float16', "
                                 f'got {dtype!r}')
            dtype = getattr(torch, dtype)
        if dtype == torch.float16:
            if device_type == 'cpu':
                raise ValueError("optim_wrapper.dtype='float16' needs CUDA; CPU autocast is "
                                 "bfloat16 (dtype='auto' or 'bfloat16')")
            super().__init__(loss_scale=loss_scale, dtype=dtype, **kwargs)
        else:
            # AmpOptimWrapper.__init__ would assert a GPU and build a GradScaler;
            # bfloat16 needs neither, so only OptimWrapper's part runs.
            OptimWrapper.__init__(self, **kwargs)
            self._scale_update_param = None
            self.loss_scaler = None
            self.cast_dtype = dtype
        print_log(f'MixedPrecisionOptimWrapper: {device_type} autocast in {self.cast_dtype}'
                  + (', dynamic loss scaling' if self.loss_scaler is not None else
                     ', no loss scaling'), logger='current')

    def backward(self, loss: torch.Tensor, **kwargs) -> None:
        if self.loss_scaler is None:
            OptimWrapper.backward(self, loss, **kwargs)
        else:
            super().backward(loss, **kwargs)

    def step(self, **kwargs) -> None:
        if self.loss_scaler is None:
            OptimWrapper.step(self, **kwargs)
        else:
            super().step(**kwargs)

    def state_dict(self) -> dict:
        if self.loss_scaler is None:
            return OptimWrapper.state_dict(self)
        return super().state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        if self.loss_scaler is None and 'loss_scaler' in state_dict:
            # A float16 run resumed on a bfloat16 device: the scale has no use here.
            state_dict = {k: v for k, v in state_dict.items() if k != 'loss_scaler'}
        super().load_state_dict(state_dict)
