"""Precise RoI pooling to one bin, in pure PyTorch.

Precise RoI pooling (Jiang et al., "Acquisition of Localization Confidence
for Accurate Object Detection", ECCV 2018) averages the bilinearly
interpolated feature map over the box exactly: the pooled value is the
integral of the interpolant over the box divided by the box area. The
interpolant places ``feat[y, x]`` at the integer point ``(x, y)`` and is zero
beyond the map (as the original CUDA kernel, which reads zeros outside), so it
is ``sum_{y,x} feat[y, x] * tri(v - y) * tri(u - x)`` with the hat function
``tri(t) = max(0, 1 - |t|)``. The integral over ``[x0, x1] x [y0, y1]``
factorises into one weight per row and one per column, so pooling every box
of a batch is two small batched contractions with no per-box Python work.
The result is differentiable in the features and runs on any device and
dtype; the weights are computed in float32 so mixed precision stays exact.
"""
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ['prroi_pool_1x1', 'hat_integral_weights', 'region_embeddings']


def _hat_antiderivative(t: Tensor) -> Tensor:
    """``int_{-inf}^{t} tri(s) ds`` for the hat function ``tri``."""
    t = t.clamp(-1.0, 1.0)
    return torch.where(t < 0, 0.5 * (1 + t) ** 2, 1 - 0.5 * (1 - t) ** 2)


def hat_integral_weights(lo: Tensor, hi: Tensor, length: int) -> Tensor:
    """``w[..., i] = int_lo^hi tri(t - i) dt`` for ``i`` in ``range(length)``.

    Args:
        lo, hi: tensors of interval ends in feature-map units, same shape ``S``.
        length: number of grid points along the axis.

    Returns:
        Tensor: shape ``S + (length,)``; zero where ``hi <= lo``.
    """
    grid = torch.arange(length, device=lo.device, dtype=lo.dtype)
    hi = torch.maximum(hi, lo)
    return (_hat_antiderivative(hi.unsqueeze(-1) - grid)
            - _hat_antiderivative(lo.unsqueeze(-1) - grid))


def prroi_pool_1x1(feats: Tensor, boxes: Tensor, spatial_scale: float) -> Tensor:
    """Pool each box of each image to one vector by precise RoI pooling.

    Args:
        feats: ``(N, C, H, W)`` feature maps.
        boxes: ``(N, K, 4)`` boxes ``(x0, y0, x1, y1)`` in input pixels, K per
            image (a fixed number, as CrossCL's windows are).
        spatial_scale: feature-map units per input pixel (1/16 for P4).

    Returns:
        Tensor: ``(N, K, C)`` pooled features in ``feats.dtype``. A box of zero
        area pools to zeros, as in the original kernel.
    """
    n, c, h, w = feats.shape
    if boxes.dim() != 3 or boxes.shape[0] != n or boxes.shape[-1] != 4:
        raise ValueError(f'boxes must have shape ({n}, K, 4), got {tuple(boxes.shape)}')
    scaled = boxes.detach().float() * spatial_scale
    x0, y0, x1, y1 = scaled.unbind(-1)
    wx = hat_integral_weights(x0, x1, w)                 # (N, K, W)
    wy = hat_integral_weights(y0, y1, h)                 # (N, K, H)
    area = ((x1 - x0).clamp(min=0) * (y1 - y0).clamp(min=0))
    inv_area = torch.where(area > 0, 1.0 / area.clamp(min=1e-12), torch.zeros_like(area))
    compute_dtype = torch.promote_types(feats.dtype, torch.float32)
    # Autocast would run the contractions in half precision; the sums over
    # whole boxes are kept in float32 and cast back at the end.
    with torch.autocast(device_type=feats.device.type, enabled=False):
        # (N, C*H, W) @ (N, W, K) -> (N, C, H, K), then contract H with the row weights.
        cols = torch.bmm(feats.to(compute_dtype).reshape(n, c * h, w),
                         wx.transpose(1, 2).to(compute_dtype))
        pooled = torch.einsum('nchk,nkh->nkc', cols.reshape(n, c, h, -1), wy.to(compute_dtype))
        pooled = pooled * inv_area.unsqueeze(-1).to(compute_dtype)
    return pooled.to(feats.dtype)


def region_embeddings(feats: Tensor, boxes: Tensor, stride: float) -> Tensor:
    """CrossCL's region features: each box pooled from a map of the given
    stride by :func:`prroi_pool_1x1` and L2-normalised (``crosscl.py``,
    ``CrossCL._region_losses``; the analysis tools compare regions this way).

    Args:
        feats: ``(N, C, H, W)`` feature maps.
        boxes: ``(N, K, 4)`` boxes in input pixels.
        stride: input pixels per feature-map cell (16 for P4).

    Returns:
        Tensor: ``(N, K, C)`` unit vectors (zeros for a box of zero area).
    """
    return F.normalize(prroi_pool_1x1(feats, boxes, 1.0 / stride), dim=-1)
