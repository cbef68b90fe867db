"""The pieces DenseCL's AdelaiDet protocols need (crosscl_mm/models/dense_heads),
each against a computation written here from AdelaiDet's code (aim-uofa/AdelaiDet
@ 5ebcac9): the GIoU loss (adet/utils/comm.py compute_ious, adet/layers/iou_loss.py),
P6/P7 without norm (adet/modeling/backbone/fpn.py LastLevelP6P7), FCOS inference
(adet/modeling/fcos/fcos_outputs.py, then detectron2's detector_postprocess), and
the solver's warmup (detectron2 v0.2 WarmupMultiStepLR)."""
import copy
import math
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
import torchvision

from conftest import REPO

CONFIGS = osp.join(REPO, 'configs', 'benchmarks', 'mmdetection')
FCOS = 'fcos_r50-fpn_syncbn_gn-head_densecl_90k_coco.py'
SOLOV2 = 'solov2_r50-fpn_syncbn_gn-head_densecl_90k_coco.py'


def build(cfg):
    import crosscl_mm  # noqa: F401
    from mmdet.utils import register_all_modules
    from mmengine.registry import DefaultScope
    from mmdet.registry import MODELS
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MODELS.build(cfg)


def load(name):
    import crosscl_mm  # noqa: F401
    from mmengine.config import Config
    return Config.fromfile(osp.join(CONFIGS, name))


# --------------------------------------------------------------- GIoU loss
def adelaidet_giou(pred, target):
    """compute_ious of adet/utils/comm.py on (l, t, r, b) distances, gious."""
    pl, pt, pr, pb = pred.unbind(1)
    tl, tt, tr, tb = target.unbind(1)
    target_area = (tl + tr) * (tt + tb)
    pred_area = (pl + pr) * (pt + pb)
    w_inter = torch.min(pl, tl) + torch.min(pr, tr)
    h_inter = torch.min(pb, tb) + torch.min(pt, tt)
    g_w = torch.max(pl, tl) + torch.max(pr, tr)
    g_h = torch.max(pb, tb) + torch.max(pt, tt)
    ac_union = g_w * g_h
    inter = w_inter * h_inter
    union = target_area + pred_area - inter
    ious = (inter + 1.0) / (union + 1.0)
    return ious - (ac_union - union) / ac_union


def test_giou_loss_is_adelaidets_on_distances_from_one_point():
    from crosscl_mm.models.dense_heads import AdelaiDetGIoULoss
    g = torch.Generator().manual_seed(0)
    n = 64
    pred_d = torch.rand(n, 4, generator=g) * 6  # distances in strides, as FCOS trains
    target_d = torch.rand(n, 4, generator=g) * 6 + 0.1
    points = torch.rand(n, 2, generator=g) * 800  # pixels
    weight = torch.rand(n, generator=g)

    def boxes(d):
        return torch.stack([points[:, 0] - d[:, 0], points[:, 1] - d[:, 1],
                            points[:, 0] + d[:, 2], points[:, 1] + d[:, 3]], 1)

    loss = AdelaiDetGIoULoss(loss_weight=1.0)
    got = loss(boxes(pred_d), boxes(target_d), weight=weight, avg_factor=weight.sum())
    # IOULoss('giou')(ious, gious, weight) / loss_denorm, as fcos_outputs.py
    want = ((1 - adelaidet_giou(pred_d, target_d)) * weight).sum() / weight.sum()
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    # the gradients too (the point cancels)
    p = pred_d.clone().requires_grad_()
    loss(boxes(p), boxes(target_d), weight=weight, avg_factor=weight.sum()).backward()
    q = pred_d.clone().requires_grad_()
    (((1 - adelaidet_giou(q, target_d)) * weight).sum() / weight.sum()).backward()
    assert torch.allclose(p.grad, q.grad, rtol=1e-4, atol=1e-6)
    # and it is not mmdet's GIoULoss: at stride units the +1 smoothing matters
    from mmdet.models.losses import GIoULoss
    mmdet = GIoULoss()(boxes(pred_d), boxes(target_d), weight=weight, avg_factor=weight.sum())
    assert abs(mmdet.item() - got.item()) > 0.01


# ------------------------------------------------------------ P6/P7 plain
def test_p6_p7_are_plain_convs_from_p5_with_a_relu_between(one_thread):
    cfg = copy.deepcopy(load(FCOS).model.neck)
    cfg.norm_cfg = dict(type='BN', requires_grad=True)  # SyncBN without a process group
    neck = build(cfg)
    neck.init_weights()
    p6, p7 = neck.fpn_convs[3], neck.fpn_convs[4]
    for m in (p6, p7):
        assert not m.with_norm and not m.with_activation and m.conv.bias is not None
        assert m.conv.stride == (2, 2) and m.conv.kernel_size == (3, 3)
        # c2_xavier_fill: kaiming uniform a=1, bound sqrt(3 / fan_in), bias 0
        bound = math.sqrt(3 / m.conv.weight[0].numel())
        assert m.conv.weight.abs().max() <= bound and m.conv.weight.std() > 0.5 * bound / 3 ** 0.5
        assert torch.all(m.conv.bias == 0)
    assert neck.fpn_convs[2].norm_cfg['type'] == 'BN'  # the FPN's own convs keep theirs
    neck.eval()
    g = torch.Generator().manual_seed(1)
    feats = (torch.randn(1, 512, 16, 16, generator=g), torch.randn(1, 1024, 8, 8, generator=g),
             torch.randn(1, 2048, 4, 4, generator=g))
    with torch.no_grad():
        outs = neck(feats)
        want_p6 = F.conv2d(outs[2], p6.conv.weight, p6.conv.bias, stride=2, padding=1)
        want_p7 = F.conv2d(F.relu(want_p6), p7.conv.weight, p7.conv.bias, stride=2, padding=1)
    assert [o.shape[-1] for o in outs] == [16, 8, 4, 2, 1]
    assert torch.allclose(outs[3], want_p6, atol=1e-5) and torch.allclose(outs[4], want_p7,
                                                                         atol=1e-5)


# ----------------------------------------------------------- FCOS inference
def adelaidet_fcos_inference(cls_scores, bbox_preds, ctrs, strides, image_size, out_size,
                             thresh, pre_topk, nms_th, post_topk):
    """fcos_outputs.py predict_proposals (one image, THRESH_WITH_CTR False),
    select_over_all_levels (ml_nms + kthvalue) and detector_postprocess."""
    boxes, scores, classes = [], [], []
    for o, r, c, s in zip(cls_scores, bbox_preds, ctrs, strides):
        C, H, W = o.shape
        shift_x = torch.arange(0, W * s, step=s, dtype=torch.float32)
        shift_y = torch.arange(0, H * s, step=s, dtype=torch.float32)
        sy, sx = torch.meshgrid(shift_y, shift_x, indexing='ij')
        locations = torch.stack((sx.reshape(-1), sy.reshape(-1)), 1) + s // 2
        logits = o.permute(1, 2, 0).reshape(-1, C).sigmoid()
        reg = (r * s).permute(1, 2, 0).reshape(-1, 4)
        ctr = c.permute(1, 2, 0).reshape(-1).sigmoid()
        candidate_inds = logits > thresh
        pre_nms_top_n = min(int(candidate_inds.sum()), pre_topk)
        logits = logits * ctr[:, None]
        per_box_cls = logits[candidate_inds]
        nz = candidate_inds.nonzero()
        loc, cls = nz[:, 0], nz[:, 1]
        reg, locs = reg[loc], locations[loc]
        if candidate_inds.sum().item() > pre_nms_top_n:
            per_box_cls, top = per_box_cls.topk(pre_nms_top_n, sorted=False)
            cls, reg, locs = cls[top], reg[top], locs[top]
        boxes.append(torch.stack([locs[:, 0] - reg[:, 0], locs[:, 1] - reg[:, 1],
                                  locs[:, 0] + reg[:, 2], locs[:, 1] + reg[:, 3]], 1))
        scores.append(torch.sqrt(per_box_cls))
        classes.append(cls)
    boxes, scores, classes = torch.cat(boxes), torch.cat(scores), torch.cat(classes)
    keep = torchvision.ops.batched_nms(boxes, scores, classes, nms_th)
    boxes, scores, classes = boxes[keep], scores[keep], classes[keep]
    n = len(scores)
    if n > post_topk > 0:
        kth, _ = torch.kthvalue(scores.cpu(), n - post_topk + 1)
        keep = scores >= kth.item()
        boxes, scores, classes = boxes[keep], scores[keep], classes[keep]
    # detector_postprocess: scale to the output size, clip, drop empty boxes
    sx, sy = out_size[1] / image_size[1], out_size[0] / image_size[0]
    boxes = boxes * torch.tensor([sx, sy, sx, sy])
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, out_size[1])
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, out_size[0])
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return boxes[keep], scores[keep], classes[keep]


def by_score(boxes, scores, labels):
    order = torch.argsort(scores, descending=True)
    return boxes[order], scores[order], labels[order]


def test_fcos_inference_is_adelaidets(one_thread):
    from mmengine.config import ConfigDict
    cfg = copy.deepcopy(load(FCOS).model.bbox_head)
    cfg.num_classes = 4
    test_cfg = ConfigDict(nms_pre=30, min_bbox_size=0, score_thr=0.05,
                          nms=dict(type='nms', iou_threshold=0.6), max_per_img=25)
    cfg.test_cfg = test_cfg
    head = build(cfg)
    head.eval()
    g = torch.Generator().manual_seed(3)
    strides, sizes = [8, 16, 32, 64, 128], [(16, 20), (8, 10), (4, 5), (2, 3), (1, 2)]
    cls = [torch.randn(1, 4, h, w, generator=g) - 1.0 for h, w in sizes]
    reg = [torch.rand(1, 4, h, w, generator=g) * 4 for h, w in sizes]  # in strides
    ctr = [torch.randn(1, 1, h, w, generator=g) for h, w in sizes]
    img_shape, ori_shape = (128, 160), (96, 120)
    meta = dict(img_shape=img_shape, ori_shape=ori_shape,
                scale_factor=(160 / 120, 128 / 96))
    # mmdet's FCOSHead multiplies the distances by the stride at test (norm_on_bbox)
    got = head.predict_by_feat(cls, [r * s for r, s in zip(reg, strides)], ctr,
                               batch_img_metas=[meta], cfg=test_cfg, rescale=True)[0]
    want = adelaidet_fcos_inference([c[0] for c in cls], [r[0] for r in reg],
                                    [c[0] for c in ctr], strides, img_shape, ori_shape,
                                    0.05, 30, 0.6, 25)
    assert len(want[1]) > 10  # enough boxes that top-k, NMS and clipping all act
    got = by_score(got.bboxes, got.scores, got.labels)
    want = by_score(*want)
    assert torch.allclose(got[1], want[1], atol=1e-6)
    assert torch.equal(got[2], want[2])
    assert torch.allclose(got[0], want[0], atol=1e-4)


# -------------------------------------------------------------- solver
@pytest.mark.parametrize('name,factor', [(FCOS, 0.001), (SOLOV2, 0.01)])
def test_schedule_is_detectron2_warmup_multistep(name, factor):
    """mmengine's schedulers built from the config against detectron2 v0.2's
    WarmupMultiStepLR (linear warmup over 1000 iterations from WARMUP_FACTOR,
    then x0.1 at each step), the steps moved to 1050/1080 to see them."""
    from mmengine.optim.scheduler import LinearLR, MultiStepLR
    cfg = load(name)
    assert 'clip_grad' not in cfg.optim_wrapper  # SOLVER.CLIP_GRADIENTS.ENABLED False
    warm, steps = (dict(cfg.param_scheduler[0]), dict(cfg.param_scheduler[1]))
    assert warm.pop('type') == 'LinearLR' and steps.pop('type') == 'MultiStepLR'
    assert steps['milestones'] == [60000, 80000]
    steps['milestones'] = [1050, 1080]
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=cfg.optim_wrapper.optimizer.lr)
    schedulers = [LinearLR(opt, **warm), MultiStepLR(opt, **steps)]
    for it in range(1100):
        alpha = it / 1000
        warmup = 1.0 if it >= 1000 else factor * (1 - alpha) + alpha
        want = 0.01 * warmup * 0.1 ** sum(it >= m for m in (1050, 1080))
        assert opt.param_groups[0]['lr'] == pytest.approx(want, rel=1e-9), it
        opt.step()
        for s in schedulers:
            s.step()


# ------------------------------------------------------------ FCOS training
def adelaidet_fcos_losses(cls_scores, bbox_preds, ctrs, strides, gt_boxes, gt_labels,
                          num_classes, soi=(64, 128, 256, 512), radius=1.5):
    """fcos_outputs.py on one process: compute_targets_for_locations with
    center sampling (get_sample_region, box centres), targets / stride, then
    fcos_losses (focal / num_pos, GIoU weighted by centerness / its sum,
    centerness BCE / num_pos)."""
    INF = 100000000
    sizes = []
    prev = -1
    for s in soi:
        sizes.append([prev, s])
        prev = s
    sizes.append([prev, INF])
    locations, ranges, num_loc = [], [], []
    for o, s, rng in zip(cls_scores, strides, sizes):
        H, W = o.shape[-2:]
        shift_x = torch.arange(0, W * s, step=s, dtype=torch.float32)
        shift_y = torch.arange(0, H * s, step=s, dtype=torch.float32)
        sy, sx = torch.meshgrid(shift_y, shift_x, indexing='ij')
        loc = torch.stack((sx.reshape(-1), sy.reshape(-1)), 1) + s // 2
        locations.append(loc)
        ranges.append(loc.new_tensor(rng)[None].expand(len(loc), -1))
        num_loc.append(len(loc))
    locs, ranges = torch.cat(locations), torch.cat(ranges)
    xs, ys = locs[:, 0], locs[:, 1]
    level_stride = torch.cat([torch.full((n,), float(s)) for n, s in zip(num_loc, strides)])
    labels_all, reg_all = [], []
    for boxes, labels in zip(gt_boxes, gt_labels):
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        l = xs[:, None] - boxes[:, 0][None]
        t = ys[:, None] - boxes[:, 1][None]
        r = boxes[:, 2][None] - xs[:, None]
        b = boxes[:, 3][None] - ys[:, None]
        reg = torch.stack([l, t, r, b], 2)
        cx = (boxes[:, 0] + boxes[:, 2]) * 0.5
        cy = (boxes[:, 1] + boxes[:, 3]) * 0.5
        st = level_stride[:, None] * radius
        bx = boxes[None].expand(len(locs), -1, 4)
        x0 = torch.where(cx - st > bx[..., 0], cx - st, bx[..., 0])
        y0 = torch.where(cy - st > bx[..., 1], cy - st, bx[..., 1])
        x1 = torch.where(cx + st > bx[..., 2], bx[..., 2], cx + st)
        y1 = torch.where(cy + st > bx[..., 3], bx[..., 3], cy + st)
        center = torch.stack((xs[:, None] - x0, ys[:, None] - y0, x1 - xs[:, None],
                              y1 - ys[:, None]), -1)
        is_in_boxes = center.min(-1)[0] > 0
        max_reg = reg.max(2)[0]
        cared = (max_reg >= ranges[:, [0]]) & (max_reg <= ranges[:, [1]])
        loc_area = area[None].repeat(len(locs), 1)
        loc_area[is_in_boxes == 0] = INF
        loc_area[cared == 0] = INF
        min_area, inds = loc_area.min(1)
        reg = reg[range(len(locs)), inds] / level_stride[:, None]
        lab = labels[inds].clone()
        lab[min_area == INF] = num_classes
        labels_all.append(lab)
        reg_all.append(reg)
    # level-first order over images, as _transpose makes it
    def level_first(per_image):
        out = []
        begin = 0
        for n in num_loc:
            out += [t[begin:begin + n] for t in per_image]
            begin += n
        return torch.cat(out)
    labels = level_first(labels_all)
    reg_targets = level_first(reg_all)
    logits = torch.cat([o.permute(0, 2, 3, 1).reshape(-1, num_classes) for o in cls_scores])
    reg_pred = torch.cat([r.permute(0, 2, 3, 1).reshape(-1, 4) for r in bbox_preds])
    ctr_pred = torch.cat([c.permute(0, 2, 3, 1).reshape(-1) for c in ctrs])
    pos = torch.nonzero(labels != num_classes).squeeze(1)
    num_pos = max(float(len(pos)), 1.0)
    target = torch.zeros_like(logits)
    target[pos, labels[pos]] = 1
    loss_cls = torchvision.ops.sigmoid_focal_loss(logits, target, alpha=0.25, gamma=2.0,
                                                  reduction='sum') / num_pos
    rt, rp = reg_targets[pos], reg_pred[pos]
    lr_, tb_ = rt[:, [0, 2]], rt[:, [1, 3]]
    ctr_t = torch.sqrt((lr_.min(-1)[0] / lr_.max(-1)[0]) * (tb_.min(-1)[0] / tb_.max(-1)[0]))
    loss_box = ((1 - adelaidet_giou(rp, rt)) * ctr_t).sum() / max(ctr_t.sum().item(), 1e-6)
    loss_ctr = F.binary_cross_entropy_with_logits(ctr_pred[pos], ctr_t, reduction='sum') / num_pos
    return dict(loss_cls=loss_cls, loss_bbox=loss_box, loss_centerness=loss_ctr), len(pos)


def test_fcos_training_losses_are_adelaidets(one_thread):
    """The config's head (mmdet's FCOSHead training with the protocol's
    settings and AdelaiDetGIoULoss) against fcos_outputs.py on two images."""
    from mmengine.structures import InstanceData
    cfg = copy.deepcopy(load(FCOS).model.bbox_head)
    cfg.num_classes = 3
    head = build(cfg)
    g = torch.Generator().manual_seed(5)
    strides, sizes = [8, 16, 32, 64, 128], [(40, 48), (20, 24), (10, 12), (5, 6), (3, 3)]
    cls = [torch.randn(2, 3, h, w, generator=g) for h, w in sizes]
    reg = [torch.rand(2, 4, h, w, generator=g) * 3 for h, w in sizes]  # relu'd, in strides
    ctr = [torch.randn(2, 1, h, w, generator=g) for h, w in sizes]
    gt_boxes = [torch.tensor([[10., 20., 70., 90.], [100., 30., 380., 300.], [5., 5., 25., 18.]]),
                torch.tensor([[50., 60., 330., 310.], [200., 150., 240., 200.]])]
    gt_labels = [torch.tensor([0, 2, 1]), torch.tensor([1, 0])]
    metas = [dict(img_shape=(320, 384), pad_shape=(320, 384))] * 2
    got = head.loss_by_feat(cls, reg, ctr,
                            [InstanceData(bboxes=b, labels=l) for b, l in zip(gt_boxes, gt_labels)],
                            metas)
    want, num_pos = adelaidet_fcos_losses(cls, reg, ctr, strides, gt_boxes, gt_labels, 3)
    assert num_pos > 20  # several levels and boxes take part
    for key in ('loss_cls', 'loss_bbox', 'loss_centerness'):
        assert got[key].item() == pytest.approx(want[key].item(), rel=1e-4), key
