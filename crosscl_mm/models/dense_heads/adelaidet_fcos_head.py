from typing import List, Optional

import torch
from mmcv.ops import batched_nms
from mmdet.models.dense_heads import FCOSHead
from mmdet.structures.bbox import scale_boxes
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor

from crosscl_mm.registry import MODELS


@MODELS.register_module()
class AdelaiDetFCOSHead(FCOSHead):
    """mmdet's ``FCOSHead`` with AdelaiDet's inference
    (``FCOSOutputs.forward_for_single_feature_map`` and
    ``select_over_all_levels`` in ``adet/modeling/fcos/fcos_outputs.py``,
    then detectron2's ``detector_postprocess``). Training is mmdet's, which
    with ``norm_on_bbox``, ``centerness_on_reg``, ``center_sampling`` and
    ``conv_bias=True`` is AdelaiDet's.

    Per level, locations and classes whose classification probability exceeds
    ``test_cfg.score_thr`` (``INFERENCE_TH_TEST``) are candidates; their
    score is multiplied by the centerness, and the ``test_cfg.nms_pre``
    (``PRE_NMS_TOPK_TEST``) best of these *products* are kept (mmdet's
    ``FCOSHead`` ranks the candidates by the classification probability alone
    and multiplies afterwards). The score is ``sqrt(probability *
    centerness)``. Boxes are not clipped before NMS; class-wise NMS
    (``test_cfg.nms``, ``NMS_TH``) over all levels; then every detection whose
    score is at least the ``max_per_img``-th best (``POST_NMS_TOPK_TEST``,
    ``kthvalue``, so ties are kept); then boxes are scaled to the original
    image, clipped to it, and empty ones dropped.
    """

    def _predict_by_feat_single(self, cls_score_list: List[Tensor], bbox_pred_list: List[Tensor],
                                score_factor_list: List[Tensor], mlvl_priors: List[Tensor],
                                img_meta: dict, cfg: Optional[ConfigDict], rescale: bool = False,
                                with_nms: bool = True) -> InstanceData:
        cfg = self.test_cfg if cfg is None else cfg
        nms_pre = cfg.get('nms_pre', -1)
        boxes, scores, labels = [], [], []
        for cls_score, bbox_pred, centerness, priors in zip(
                cls_score_list, bbox_pred_list, score_factor_list, mlvl_priors):
            probs = cls_score.permute(1, 2, 0).reshape(-1, self.cls_out_channels).sigmoid()
            ctr = centerness.permute(1, 2, 0).reshape(-1).sigmoid()
            candidates = probs > cfg.score_thr
            level_scores = (probs * ctr[:, None])[candidates]
            locations, classes = candidates.nonzero(as_tuple=True)
            if 0 < nms_pre < level_scores.numel():
                level_scores, top = level_scores.topk(nms_pre, sorted=False)
                locations, classes = locations[top], classes[top]
            distances = bbox_pred.permute(1, 2, 0).reshape(-1, 4)[locations]
            boxes.append(self.bbox_coder.decode(priors[locations], distances))
            scores.append(level_scores.sqrt())
            labels.append(classes)
        results = InstanceData(bboxes=torch.cat(boxes), scores=torch.cat(scores),
                               labels=torch.cat(labels))
        if with_nms and len(results) > 0:
            _, keep = batched_nms(results.bboxes, results.scores, results.labels, cfg.nms)
            results = results[keep]
            max_per_img = cfg.get('max_per_img', -1)
            if len(results) > max_per_img > 0:
                kth = torch.kthvalue(results.scores.cpu(), len(results) - max_per_img + 1)[0]
                results = results[results.scores >= kth.item()]
        if rescale:
            results.bboxes = scale_boxes(results.bboxes, [1 / s for s in img_meta['scale_factor']])
        height, width = img_meta['ori_shape'] if rescale else img_meta['img_shape']
        bboxes = results.bboxes
        bboxes[:, 0::2] = bboxes[:, 0::2].clamp(min=0, max=width)
        bboxes[:, 1::2] = bboxes[:, 1::2].clamp(min=0, max=height)
        results.bboxes = bboxes
        return results[(bboxes[:, 2] > bboxes[:, 0]) & (bboxes[:, 3] > bboxes[:, 1])]
