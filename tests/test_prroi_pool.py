"""Precise RoI pooling against dense numerical integration, and gradcheck."""
import pytest
import torch

from crosscl_mm.models.utils import prroi_pool_1x1


def _interpolant(feat, ys, xs):
    """Bilinear interpolant with feat[y, x] at integer points, zero outside the
    map, evaluated on a dense grid (an independent, brute-force formulation)."""
    c, h, w = feat.shape
    padded = torch.zeros(c, h + 2, w + 2, dtype=feat.dtype)
    padded[:, 1:-1, 1:-1] = feat
    yy, xx = torch.meshgrid(ys, xs, indexing='ij')
    y0, x0 = torch.floor(yy), torch.floor(xx)
    ty, tx = yy - y0, xx - x0
    out = 0
    for dy, wy in ((0, 1 - ty), (1, ty)):
        for dx, wx in ((0, 1 - tx), (1, tx)):
            yi = (y0 + dy + 1).long().clamp(0, h + 1)
            xi = (x0 + dx + 1).long().clamp(0, w + 1)
            out = out + padded[:, yi, xi] * (wy * wx)
    return out


def _dense_average(feat, box, scale, steps=1200):
    x0, y0, x1, y1 = [v * scale for v in box]
    # Midpoint rule on a fine grid.
    xs = x0 + (torch.arange(steps, dtype=torch.float64) + 0.5) * (x1 - x0) / steps
    ys = y0 + (torch.arange(steps, dtype=torch.float64) + 0.5) * (y1 - y0) / steps
    return _interpolant(feat, ys, xs).mean(dim=(1, 2))


def test_matches_dense_integration():
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(2, 3, 7, 9, generator=g, dtype=torch.float64)
    boxes = torch.tensor([[[0., 0., 48., 48.], [13.3, 7.1, 90.2, 60.9], [100., 80., 150., 130.]],
                          [[-20., -8., 30., 40.], [5.5, 5.5, 6.5, 6.5], [60., 10., 143.9, 111.]]],
                         dtype=torch.float64)
    scale = 1 / 16
    pooled = prroi_pool_1x1(feats, boxes, scale)
    assert pooled.shape == (2, 3, 3)
    for n in range(2):
        for k in range(3):
            expected = _dense_average(feats[n], boxes[n, k].tolist(), scale)
            torch.testing.assert_close(pooled[n, k], expected, rtol=1e-5, atol=1e-5)


def test_constant_map_inside_pools_to_the_constant_and_zero_area_to_zero():
    feats = torch.full((1, 4, 10, 10), 3.0)
    boxes = torch.tensor([[[16., 16., 120., 100.], [40., 40., 40., 80.]]])
    out = prroi_pool_1x1(feats, boxes, 1 / 16)
    torch.testing.assert_close(out[0, 0], torch.full((4,), 3.0))
    torch.testing.assert_close(out[0, 1], torch.zeros(4))


def test_gradcheck():
    g = torch.Generator().manual_seed(1)
    feats = torch.randn(2, 2, 5, 6, generator=g, dtype=torch.float64, requires_grad=True)
    boxes = torch.tensor([[[3., 5., 40., 33.], [0., 0., 80., 80.]],
                          [[17., 2., 61., 70.], [-5., 10., 20., 95.]]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda f: prroi_pool_1x1(f, boxes, 1 / 16), (feats,))


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_low_precision_and_autocast_stay_close_to_float32(dtype):
    g = torch.Generator().manual_seed(2)
    feats = torch.randn(2, 8, 14, 14, generator=g)
    boxes = torch.tensor([[[0., 0., 48., 48.], [32., 64., 80., 112.]]]).repeat(2, 1, 1)
    ref = prroi_pool_1x1(feats, boxes, 1 / 16)
    low = prroi_pool_1x1(feats.to(dtype), boxes, 1 / 16)
    assert low.dtype == dtype
    torch.testing.assert_close(low.float(), ref, rtol=2e-2, atol=2e-2)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        auto = prroi_pool_1x1(feats, boxes, 1 / 16)
    assert auto.dtype == torch.float32
    torch.testing.assert_close(auto, ref)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA for mmcv.ops.PrRoIPool')
def test_matches_mmcv_prroi_pool_on_cuda():
    from mmcv.ops import prroi_pool
    g = torch.Generator().manual_seed(3)
    feats = torch.randn(2, 16, 14, 14, generator=g).cuda()
    boxes = torch.rand(2, 36, 4, generator=g) * 200
    boxes[..., 2:] = boxes[..., :2] + torch.rand(2, 36, 2, generator=g) * 80 + 1
    boxes = boxes.cuda()
    ours = prroi_pool_1x1(feats, boxes, 1 / 16)
    rois = torch.cat([torch.arange(2, device='cuda').repeat_interleave(36)[:, None].float(),
                      boxes.reshape(-1, 4)], dim=1)
    theirs = prroi_pool(feats, rois, (1, 1), 1 / 16).reshape(2, 36, 16)
    assert (ours - theirs).abs().max() <= 1e-4
