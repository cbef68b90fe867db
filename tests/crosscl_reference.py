"""The reference's definitions, written out for the tests' expected sides.

Transcribed from the official CrossCL code (github yanjk3/CrossCL:
crosscl/datasets.py for windows and box mapping, crosscl/builder.py and
main_crosscl.py for the losses) and from the definition of precise RoI
pooling (Jiang et al., ECCV 2018), one scalar or one cell at a time in the
reference's order of operations. Nothing here imports crosscl_mm: a test
that compares crosscl_mm with these functions compares it with the paper's
code, not with itself.
"""
import math

import torch
import torch.nn.functional as F


def reference_windows(img_size, window=48, stride=32, grid=6, base_size=224.):
    """crosscl/datasets.py:28-40 (CrossCL's 48/32 on a 6x6 lattice; ReSim's P3
    lattice is 32/24 on 8x8): ``[(x0, y0, x1, y1), ...]`` in row-major order."""
    size, stride = window * img_size / base_size, stride * img_size / base_size
    anchors = []
    for i in range(grid):
        for j in range(grid):
            y0, x0 = i * stride, j * stride
            y1, x1 = y0 + size, x0 + size
            if x1 >= img_size or y1 >= img_size:
                continue
            anchors.append((x0, y0, x1, y1))
    return anchors


def reference_anchor_mapping(img_size, anchor, loc_q, loc_k):
    """crosscl/datasets.py:93-119: a query-view window in the key view, and
    whether the reference keeps it (it writes ``-1`` for the ones it drops)."""
    x0, y0, x1, y1 = anchor
    l_q, t_q, r_q, b_q = loc_q
    l_k, t_k, r_k, b_k = loc_k
    l_a = (r_q - l_q) * x0 / img_size + l_q
    r_a = (r_q - l_q) * x1 / img_size + l_q
    t_a = (b_q - t_q) * y0 / img_size + t_q
    b_a = (b_q - t_q) * y1 / img_size + t_q
    x0 = (l_a - l_k) * img_size / (r_k - l_k)
    x1 = (r_a - l_k) * img_size / (r_k - l_k)
    y0 = (t_a - t_k) * img_size / (b_k - t_k)
    y1 = (b_a - t_k) * img_size / (b_k - t_k)
    valid = not (x0 < 0 or y0 < 0 or x1 >= img_size or y1 >= img_size)
    return (x0, y0, x1, y1), valid


def reference_regions(img_size, loc_q, loc_k, **lattice):
    """crosscl/datasets.py:65-91 for one crop pair: query windows, key boxes
    (the fake ``(0, 0, 1, 1)`` where invalid) and the labels ``0`` / ``-1``."""
    query = reference_windows(img_size, **lattice)
    key, labels = [], []
    for anchor in query:
        box, valid = reference_anchor_mapping(img_size, anchor, loc_q, loc_k)
        key.append(box if valid else (0, 0, 1, 1))
        labels.append(0 if valid else -1)
    return (torch.tensor(query, dtype=torch.float64).float(),
            torch.tensor(key, dtype=torch.float64).float(), torch.tensor(labels))


def precise_roi_weights(box, spatial_scale, height, width):
    """Precise RoI pooling of one box to one bin as weights on the map's
    points: pooled = ``sum weights[i * width + j] * feat[:, i, j]``.

    The pooled value is the integral of the bilinear interpolant over the box
    divided by its area. The interpolant puts ``feat[:, i, j]`` at the point
    ``(j, i)`` and is zero beyond the map, as the original kernel reads zeros
    outside. On each unit cell it is bilinear, and a bilinear function's mean
    over a rectangle is its value at the rectangle's centre, so the integral
    is a sum over the cells the box overlaps of ``overlap area *
    interpolant(overlap centre)``, each spread over the cell's four corners.
    A box of zero area pools to zero.
    """
    x0, y0, x1, y1 = [float(v) * spatial_scale for v in box]
    weights = [0.0] * (height * width)
    area = (x1 - x0) * (y1 - y0)
    if area <= 0:
        return weights
    for i in range(math.floor(y0), math.ceil(y1)):
        top, bottom = max(y0, i), min(y1, i + 1)
        for j in range(math.floor(x0), math.ceil(x1)):
            left, right = max(x0, j), min(x1, j + 1)
            if right <= left or bottom <= top:
                continue
            u, v = (left + right) / 2 - j, (top + bottom) / 2 - i
            overlap = (right - left) * (bottom - top) / area
            for di, dj, share in ((0, 0, (1 - u) * (1 - v)), (0, 1, u * (1 - v)),
                                  (1, 0, (1 - u) * v), (1, 1, u * v)):
                if 0 <= i + di < height and 0 <= j + dj < width:
                    weights[(i + di) * width + j + dj] += overlap * share
    return weights


def precise_roi_pool_all(feats, boxes, spatial_scale):
    """``(N, C, H, W)`` maps and ``(N, K, 4)`` boxes -> ``(N * K, C)``, image-major,
    as the reference's ``prroi_pool2d(feats, rois, 1, 1, scale)``."""
    n, c, h, w = feats.shape
    weights = torch.tensor([[precise_roi_weights(box.tolist(), spatial_scale, h, w)
                             for box in boxes[i]] for i in range(n)], dtype=torch.float64)
    pooled = torch.einsum('nkp,ncp->nkc', weights.to(feats.dtype), feats.flatten(2))
    return pooled.flatten(0, 1)


def reference_logits(q, k, neg, temperature):
    """crosscl/builder.py:117-120, with ``neg`` as ``(C, Q)`` columns."""
    l_pos = torch.einsum('nc,nc->n', [q, k]).unsqueeze(-1)
    l_neg = torch.einsum('nc,ck->nk', [q, neg])
    return torch.cat([l_pos, l_neg], dim=1) / temperature


def reference_loss_and_accuracy(logits, labels):
    """main_crosscl.py:201, 376-412: ``nn.CrossEntropyLoss(ignore_index=-1)`` and
    the top-1 accuracy (in percent) over the labelled rows."""
    loss = torch.nn.CrossEntropyLoss(ignore_index=-1)(logits, labels)
    kept = labels != -1
    correct = (logits[kept].argmax(dim=1) == labels[kept]).float()
    return loss, correct.sum() * 100.0 / max(int(kept.sum()), 1)


def reference_negatives(key_map, kernel, stride):
    """crosscl/builder.py:150-168: average-pooled, L2-normalised cells of the
    key maps as ``(C, N * cells)`` columns (before any gathering)."""
    cells = F.normalize(F.avg_pool2d(key_map, kernel, stride=stride, padding=0), dim=1)
    return cells.transpose(1, 0).contiguous().view(key_map.shape[1], -1)
