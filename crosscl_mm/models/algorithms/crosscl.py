from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.structures import BaseDataElement
from torch import Tensor, nn

from crosscl_mm.registry import MODELS
from crosscl_mm.utils import batch_shuffle, batch_unshuffle, concat_all_gather
from ..utils import (KeyQueue, MomentumEncoder, convert_split_batch_norm, negative_pool_geometry,
                     prroi_pool_1x1, warn_if_shuffle_bn_is_identity)
from .base import PretrainingAlgorithm

DEFAULT_LOSS_WEIGHTS = dict(loss_global=1.0, loss_p4=1.0, loss_p3=1.0, loss_p4_p3=1.0,
                            loss_p3_p4=1.0)


def region_term_levels(name: str) -> Optional[Tuple[str, str]]:
    """The (query level, key level) of a loss term named as it is logged:
    ``loss_p4_p3`` -> ``('p4', 'p3')``, ``loss_p4`` -> ``('p4', 'p4')``, and
    ``None`` for the global term ``loss_global``."""
    if not name.startswith('loss_'):
        raise ValueError(f'loss_weights keys are loss names such as "loss_p4", got {name!r}')
    if name == 'loss_global':
        return None
    query_level, _, key_level = name[len('loss_'):].partition('_')
    return query_level, key_level or query_level


@MODELS.register_module()
class CrossCL(PretrainingAlgorithm):
    """CrossCL: self-supervised cross-stage regional contrastive learning.

    Implementation of `Self-supervised Cross-stage Regional Contrastive
    Learning for Object Detection` (ICME 2023), built on MoCo v2 and ReSim.

    An online encoder (backbone + global projection + top-down FPN) and its
    momentum copy see two views of each image. Five InfoNCE terms are summed:

    - ``global``: the projected C5 embeddings of the two views, against a
      queue of past keys (MoCo v2);
    - ``p4``, ``p3``: each sliding-window region of the query view, pooled
      from the online P4 (P3), against the same region of the key view pooled
      from the momentum P4 (P3); negatives are the momentum map's average-
      pooled cells;
    - ``p4_p3``, ``p3_p4``: the cross-stage terms, an online P4 (P3) region
      against the momentum P3 (P4) region and that level's negatives.

    Region features are 1x1 precise RoI pooling, L2-normalised, with no
    projection. Regions whose box leaves the key view are ignored.

    Args:
        backbone: config of a backbone returning the levels that ``fpn``
            takes, lowest first (C3, C4, C5 of an mmdet ``ResNet``).
        neck: config of the global projection of the last level.
        fpn: config of the top-down FPN; ``None`` gives plain MoCo v2 (the
            global-only ablation).
        loss: config of the InfoNCE loss shared by all terms.
        region_levels: names and strides of the FPN outputs, lowest first.
        loss_weights: weight of each term, by the name it is logged under:
            ``loss_global`` is the MoCo term, and a regional term
            ``loss_a_b`` contrasts level ``a`` queries with level ``b`` keys
            (``loss_a`` means ``loss_a_a``). Terms with weight 0 are not
            computed.
        gather_negatives: per level, whether region negatives are gathered
            from all ranks (P4 in the reference) or kept local (P3).
        neg_pool: optional ``(kernel, stride)`` of the negatives' average
            pooling; by default derived from the image size by
            :func:`negative_pool_geometry`.
        queue_len: number of global keys in the queue.
        feat_dim: dimension of the global embedding.
        momentum: momentum of the key encoder, ``k = m * k + (1 - m) * q``.
        split_batch_bn: ``N > 1``: every BatchNorm2d of the encoders computes
            its statistics over N groups of the batch and, in one process,
            the key batch is permuted before the key encoder (MoCo's one-GPU
            demo; :class:`SplitBatchNorm2d`), so that shuffle BN has an
            effect without several processes. 1 (default): plain BN; in one
            process shuffle BN is then the identity (a warning says so).
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 fpn: Optional[dict] = None,
                 loss: dict = dict(type='InfoNCELoss', temperature=0.2),
                 region_levels: Sequence[Tuple[str, int]] = (('p3', 8), ('p4', 16)),
                 loss_weights: Dict[str, float] = DEFAULT_LOSS_WEIGHTS,
                 gather_negatives: Dict[str, bool] = dict(p4=True, p3=False),
                 neg_pool: Optional[Tuple[int, int]] = None,
                 queue_len: int = 65536,
                 feat_dim: int = 128,
                 momentum: float = 0.999,
                 split_batch_bn: int = 1,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg=None) -> None:
        super().__init__(data_preprocessor, init_cfg)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck)
        self.fpn = MODELS.build(fpn) if fpn is not None else None
        self.split_batch_bn = int(split_batch_bn)
        convert_split_batch_norm(self._online_encoder(), self.split_batch_bn)
        self.loss_module = MODELS.build(loss)

        self.region_strides = dict(region_levels) if self.fpn is not None else {}
        self.region_order = [name for name, _ in region_levels] if self.fpn is not None else []
        self.loss_weights = {name: float(w) for name, w in loss_weights.items() if w}
        self.region_terms = {}
        for name in self.loss_weights:
            levels = region_term_levels(name)
            if levels is None:
                continue
            for level in levels:
                if level not in self.region_strides:
                    raise ValueError(
                        f'loss_weights[{name!r}] needs FPN level {level!r}, but the model has '
                        f'{sorted(self.region_strides) or "no FPN"}')
            self.region_terms[name] = levels
        self.gather_negatives = dict(gather_negatives)
        self.neg_pool = tuple(neg_pool) if neg_pool is not None else None

        self.momentum_encoder = MomentumEncoder(self._online_encoder(), 1 - momentum)
        self.queue = KeyQueue(queue_len, feat_dim)

    def _online_encoder(self) -> nn.ModuleDict:
        """The online modules under the names the momentum encoder uses.

        Built on demand rather than stored, so the modules appear in the
        state dict once, as ``backbone.*``, ``neck.*`` and ``fpn.*``.
        """
        modules = dict(backbone=self.backbone, neck=self.neck)
        if self.fpn is not None:
            modules['fpn'] = self.fpn
        return nn.ModuleDict(modules)

    def _encode(self, encoder, img: Tensor) -> Tuple[Tensor, Dict[str, Tensor]]:
        """Global embedding (normalised) and the FPN maps by level name."""
        levels = encoder['backbone'](img)
        embedding = F.normalize(encoder['neck'](levels[-1]), dim=1)
        if 'fpn' not in encoder or not self.region_terms:
            return embedding, {}
        return embedding, dict(zip(self.region_order, encoder['fpn'](levels)))

    def loss(self, inputs: List[Tensor], data_samples: List[BaseDataElement]) -> Dict[str, Tensor]:
        img_q, img_k = inputs
        img_size = img_q.shape[-1]
        q, maps_q = self._encode(self._online_encoder(), img_q)

        warn_if_shuffle_bn_is_identity(type(self).__name__, self.split_batch_bn)
        with torch.no_grad():
            self.momentum_encoder.update_parameters(self._online_encoder())
            shuffled, idx_unshuffle = batch_shuffle(img_k, in_process=self.split_batch_bn > 1)
            k, maps_k = self._encode(self.momentum_encoder.module, shuffled)
            k = batch_unshuffle(k, idx_unshuffle)
            maps_k = {lvl: batch_unshuffle(m, idx_unshuffle) for lvl, m in maps_k.items()}

        losses = {}
        if 'loss_global' in self.loss_weights:
            losses['loss_global'], losses['acc_global'] = self.loss_module(
                q, k, self.queue.negatives())
        if self.region_terms:
            losses.update(self._region_losses(maps_q, maps_k, data_samples, img_size))
        self.queue.push(k)

        for name, weight in self.loss_weights.items():
            if weight != 1.0:
                losses[name] = losses[name] * weight
        return losses

    def _region_losses(self, maps_q, maps_k, data_samples, img_size) -> Dict[str, Tensor]:
        regions = {lvl: _stack_regions(data_samples, f'regions_{lvl}') for lvl in self.region_strides}
        negatives = {}
        with torch.no_grad():
            for lvl in {key_lvl for _, key_lvl in self.region_terms.values()}:
                negatives[lvl] = self._region_negatives(maps_k[lvl], img_size, lvl)

        pooled_q, pooled_k = {}, {}

        def pool(maps, cache, map_lvl, region_lvl, boxes_key):
            if (map_lvl, region_lvl) not in cache:
                boxes = regions[region_lvl][boxes_key]
                feats = prroi_pool_1x1(maps[map_lvl], boxes, 1.0 / self.region_strides[map_lvl])
                cache[(map_lvl, region_lvl)] = F.normalize(feats.flatten(0, 1), dim=1)
            return cache[(map_lvl, region_lvl)]

        losses = {}
        for name, (q_lvl, k_lvl) in self.region_terms.items():
            # Windows are those of the query level, seen on the key level.
            query = pool(maps_q, pooled_q, q_lvl, q_lvl, 'query_boxes')
            with torch.no_grad():
                positive = pool(maps_k, pooled_k, k_lvl, q_lvl, 'key_boxes')
            valid = regions[q_lvl]['valid'].flatten()
            losses[name], losses[name.replace('loss_', 'acc_', 1)] = self.loss_module(
                query, positive, negatives[k_lvl], valid)
        return losses

    def _region_negatives(self, key_map: Tensor, img_size: int, level: str) -> Tensor:
        kernel, stride = self.neg_pool or negative_pool_geometry(img_size)
        cells = F.normalize(F.avg_pool2d(key_map, kernel, stride), dim=1)
        if self.gather_negatives.get(level, False):
            cells = concat_all_gather(cells)
        return cells.permute(0, 2, 3, 1).reshape(-1, cells.shape[1])


def _stack_regions(data_samples, field: str) -> Dict[str, Tensor]:
    items = [getattr(sample, field) for sample in data_samples]
    return dict(query_boxes=torch.stack([r.query_boxes for r in items]),
                key_boxes=torch.stack([r.key_boxes for r in items]),
                valid=torch.stack([r.valid for r in items]))
