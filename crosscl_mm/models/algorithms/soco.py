from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.structures import BaseDataElement
from torch import Tensor, nn
from torchvision.ops import roi_align

from crosscl_mm.registry import MODELS
from ..utils import CosineEMA
from .base import PretrainingAlgorithm

HEAD_BATCHING = ('per_level', 'per_box_set')


def box_correspondence(ids_a: Tensor, levels_a: Tensor, ids_b: Tensor, levels_b: Tensor,
                       num_levels: int) -> Tensor:
    """Which pooled box features of two views show the same object.

    Features are laid out level-major, row ``j * K + i`` for box ``i`` pooled
    on level ``j``. Row ``(j, i)`` of view a matches column ``(j', i')`` of
    view b when box ``i`` is assigned to level ``j``, box ``i'`` to level
    ``j'``, and both have the same id: the official
    ``get_aware_correspondence_matrix`` (``contrast/data/bboxs_utils.py:378-410``),
    cross-level pairs and padded duplicates included.

    Args:
        ids_a, levels_a: ``(N, K)`` ids and levels (-1: none) of view a's boxes.
        ids_b, levels_b: the same for view b.
        num_levels: number of FPN levels ``P``.

    Returns:
        Tensor: ``(N, P * K, P * K)`` float, 1 for a match.
    """
    def layout(ids, levels):
        level = torch.arange(num_levels, device=ids.device).view(1, -1, 1)
        assigned = (levels.unsqueeze(1) == level).flatten(1)  # (N, P * K)
        return ids.unsqueeze(1).expand(-1, num_levels, -1).flatten(1), assigned

    ids_a, assigned_a = layout(ids_a, levels_a)
    ids_b, assigned_b = layout(ids_b, levels_b)
    same = ids_a.unsqueeze(2) == ids_b.unsqueeze(1)
    return (same & assigned_a.unsqueeze(2) & assigned_b.unsqueeze(1)).float()


@MODELS.register_module()
class SoCo(PretrainingAlgorithm):
    """SoCo: Selective Object COntrastive learning.

    Implementation of `Aligning Pretraining for Detection via Object-Level
    Contrastive Learning <https://arxiv.org/abs/2106.02637>`_ (NeurIPS 2021),
    after the official code (github hologerry/SoCo,
    ``contrast/models/SoCo_FPN.py``, ``SoCo_FPN_Star.py``).

    An online network (backbone, FPN P2-P5, box head, projector, predictor)
    and its momentum copy (no predictor) see view 1 (the whole image) and
    views 2, 3 (and SoCo*'s 4) of each image. Every proposal box of a view
    is RoI-aligned from every FPN level, embedded, and L2-normalised; for
    each pair (1, k) the online predictions of one view regress the momentum
    projections of the same objects in the other view
    (:class:`MatchedCosineLoss`, both directions). Boxes match when they
    share an id and each is taken at the FPN level its size assigns it
    (:func:`box_correspondence`).

    Logged per pair: ``loss_v1_vk`` (view 1 predicts view k) and
    ``loss_vk_v1``; their sum is the official loss. Also ``momentum``.

    Args:
        backbone: config of a backbone returning C2-C5.
        neck: config of the FPN returning P2-P5.
        head: config of the box head (:class:`ConvFCBoxHead`).
        projector, predictor: configs of the MLPs (:class:`ProjectionMLP`).
        loss: config of the per-pair loss.
        base_momentum: momentum of the first update, rising to 1
            (:class:`CosineEMA`).
        roi_size: side of the RoIAlign output.
        head_batching: ``'per_level'`` (default, official): head, projector
            and predictor run once per (box set, FPN level) over all boxes
            of the batch, so their BatchNorm statistics are those of that
            call, as in the official code (docs/soco.md, B3).
            ``'per_box_set'``: once per box set over all levels; fewer calls,
            other statistics, another loss on the same weights.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 projector: dict,
                 predictor: dict,
                 loss: dict = dict(type='MatchedCosineLoss'),
                 base_momentum: float = 0.99,
                 roi_size: int = 7,
                 head_batching: str = 'per_level',
                 data_preprocessor: Optional[dict] = None,
                 init_cfg=None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if head_batching not in HEAD_BATCHING:
            raise ValueError(f'head_batching must be one of {HEAD_BATCHING}, got {head_batching!r}')
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck)
        self.head = MODELS.build(head)
        self.projector = MODELS.build(projector)
        self.predictor = MODELS.build(predictor)
        self.loss_module = MODELS.build(loss)
        self.roi_size = roi_size
        self.head_batching = head_batching
        self.momentum_encoder = CosineEMA(self._online_encoder(), base_momentum)

    def _online_encoder(self) -> nn.ModuleDict:
        """The online modules that have a momentum copy, under the names the
        copy uses (built on demand: the state dict holds them once)."""
        return nn.ModuleDict(dict(backbone=self.backbone, neck=self.neck, head=self.head,
                                  projector=self.projector))

    def extract_feat(self, inputs: List[Tensor], data_samples=None) -> Tuple[Tensor, ...]:
        """FPN maps of the first view."""
        return tuple(self.neck(self.backbone(inputs[0])))

    def loss(self, inputs: List[Tensor], data_samples: List[BaseDataElement]) -> Dict[str, Tensor]:
        pairs = range(2, len(inputs) + 1)
        # Head calls in the official order, view 1's box sets first (1_2, 1_3[, 1_4]), then
        # 2, 3[, 4] (SoCo_FPN.py:157-214, SoCo_FPN_Star.py:157-245): each call updates the
        # BatchNorm running statistics of head, projector and predictor in turn.
        names = [f'1_{k}' for k in pairs] + [f'{k}' for k in pairs]
        boxes = {name: _stack_box_set(data_samples, f'regions_{name}') for name in names}

        online = self._online_encoder()
        maps = [self._fpn(online, view) for view in inputs]
        preds = {name: self._embed(online, maps[_view(name)], box_set['boxes'], predict=True)
                 for name, box_set in boxes.items()}

        with torch.no_grad():
            self.momentum_encoder.update_parameters(online)
            target_net = self.momentum_encoder.module
            target_maps = [self._fpn(target_net, view) for view in inputs]
            targets = {name: self._embed(target_net, target_maps[_view(name)], box_set['boxes'],
                                         predict=False)
                       for name, box_set in boxes.items()}

        num_levels = len(maps[0])
        losses = {}
        for k in pairs:
            view1, view_k = boxes[f'1_{k}'], boxes[f'{k}']
            match = box_correspondence(view1['ids'], view1['levels'], view_k['ids'],
                                       view_k['levels'], num_levels)
            losses[f'loss_v1_v{k}'] = self.loss_module(preds[f'1_{k}'], targets[f'{k}'], match)
            losses[f'loss_v{k}_v1'] = self.loss_module(preds[f'{k}'], targets[f'1_{k}'],
                                                       match.transpose(1, 2))
        # Known on the host: logging it reads nothing back from the device.
        losses['momentum'] = torch.tensor(
            self.momentum_encoder.momentum_at(self.momentum_encoder.num_updates - 1),
            dtype=torch.float64)
        return losses

    @staticmethod
    def _fpn(net, view: Tensor) -> Sequence[Tensor]:
        return net['neck'](net['backbone'](view))

    def _embed(self, net, maps: Sequence[Tensor], boxes: Tensor, predict: bool) -> Tensor:
        """Normalised embeddings of every box on every level: ``(N, P * K, C)``,
        level-major (official ``SoCo_FPN.py:157-167``)."""
        n, k = boxes.shape[:2]
        pooled = [self._roi_align(level_map, boxes) for level_map in maps]
        if self.head_batching == 'per_level':
            embedded = [self._project(net, feats, predict) for feats in pooled]
        else:
            embedded = self._project(net, torch.cat(pooled), predict).split(n * k)
        # float32 under mixed precision, as apex O1 runs F.normalize in the official code
        # (apex/amp/lists/functional_overrides.py:46 @ e13873d, 'normalize').
        return torch.cat([F.normalize(z.float(), dim=1).view(n, k, -1) for z in embedded], dim=1)

    def _project(self, net, feats: Tensor, predict: bool) -> Tensor:
        z = net['projector'](net['head'](feats))
        return self.predictor(z) if predict else z

    def _roi_align(self, level_map: Tensor, boxes: Tensor) -> Tensor:
        return roi_align_view_fractions(level_map, boxes, self.roi_size)


def roi_align_view_fractions(feature_map: Tensor, boxes: Tensor, roi_size: int) -> Tensor:
    """RoIAlign of boxes given as fractions of the view, scaled by the map's
    own size (official ``box_util.py:11-25``): on a 112-px view P5 is 4x4, so
    a fraction times 4 is not pixels / 32 (docs/soco.md, B5).

    ``torchvision.ops.roi_align(spatial_scale=1, sampling_ratio=-1,
    aligned=True)`` as official (``SoCo_FPN.py:131-141``, ``resnet.py:224-237``).

    Args:
        feature_map: ``(N, C, H, W)``.
        boxes: ``(N, K, 4)`` ``(x1, y1, x2, y2)`` fractions of the view.
        roi_size: side of the output.

    Returns:
        Tensor: ``(N * K, C, roi_size, roi_size)``, image-major.
    """
    n, k = boxes.shape[:2]
    h, w = feature_map.shape[-2:]
    scale = boxes.new_tensor([w, h, w, h])
    index = torch.arange(n, device=boxes.device, dtype=boxes.dtype)
    rois = torch.cat([index.view(n, 1, 1).expand(n, k, 1), boxes * scale], dim=2)
    # The map takes the boxes' dtype (float32), as official under mixed precision.
    return roi_align(feature_map.to(boxes.dtype), rois.view(-1, 5), roi_size,
                     spatial_scale=1.0, sampling_ratio=-1, aligned=True)


def _view(box_set: str) -> int:
    """Index of the view a box set lies on: ``'1_k'`` -> 0, ``'k'`` -> k - 1."""
    return 0 if box_set.startswith('1_') else int(box_set) - 1


def _stack_box_set(data_samples, field: str) -> Dict[str, Tensor]:
    items = [getattr(sample, field) for sample in data_samples]
    return dict(boxes=torch.stack([r.boxes for r in items]).float(),
                ids=torch.stack([r.ids for r in items]),
                levels=torch.stack([r.levels for r in items]))


@MODELS.register_module()
class SoCoC4(PretrainingAlgorithm):
    """SoCo on a ResNet-C4 detector's layout: SoCo-C4.

    The C4 variant of SoCo (`Aligning Pretraining for Detection via
    Object-Level Contrastive Learning <https://arxiv.org/abs/2106.02637>`_,
    official ``contrast/models/SoCo_C4.py`` and ``contrast/resnet.py``).
    Two views: view 1 the whole image, view 2 a random crop, both 224 px.
    For each view, the online network computes C4 (ResNet stages 1-3),
    RoI-aligns the view's proposal boxes from it at 14x14, runs the res5
    stage on them as the box head and average-pools (:class:`Res5BoxHead`),
    then projects and predicts; the momentum copy (backbone, res5 head,
    projector; no predictor) gives the targets. With ``q`` the normalised
    predictions, ``k`` the normalised targets and ``C[n, a, b] = 1`` when box
    ``a`` of view 1 and box ``b`` of view 2 hold the same proposal
    (``get_correspondence_matrix``, ``bboxs_utils.py:262-275``)::

        loss = L(q_1, k_2, C) + L(q_2, k_1, C^T)
        L(q, k, C) = -2 * mean_n( sum_ab C_ab <q_a, k_b> / (sum_ab C_ab + 1e-6) )

    (:class:`MatchedCosineLoss`; ``SoCo_C4.py:91-103, 136-138``). As official
    (``SoCo_C4.py:114-134``), each view runs through the whole online
    network on its own (BN statistics per view, over the batch's images for
    the backbone and over the batch's ``N * K`` RoIs for res5, projector and
    predictor), then the momentum copy is updated (:class:`CosineEMA`,
    ``SoCo_C4.py:76-89``) and runs on view 1, then view 2.

    Boxes, RoIAlign, loss and momentum schedule are SoCo-FPN's
    (:class:`SoCo`): boxes as fractions of the view scaled by C4's own size
    (:func:`roi_align_view_fractions`), ``aligned=True``, adaptive sampling.
    The official ``output_size`` argument (7 in the scripts) is ignored by
    the C4 model, whose ResNet sets 14 (``resnet.py:148-150``).

    Logged: ``loss_v1_v2`` (view 1 predicts view 2), ``loss_v2_v1``, and
    ``momentum``.

    Args:
        backbone: config of a ResNet returning C4 only (mmdet ``ResNet``
            with ``num_stages=3``, ``out_indices=(2,)``).
        head: config of the res5 box head (:class:`Res5BoxHead`).
        projector, predictor: configs of the MLPs (:class:`ProjectionMLP`;
            official 2048-4096-256 and 256-4096-256, ``mlps.py:87-92``).
        loss: config of the per-pair loss.
        base_momentum: momentum of the first update, rising to 1.
        roi_size: side of the RoIAlign output (14).
    """

    def __init__(self,
                 backbone: dict,
                 head: dict,
                 projector: dict,
                 predictor: dict,
                 loss: dict = dict(type='MatchedCosineLoss'),
                 base_momentum: float = 0.99,
                 roi_size: int = 14,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg=None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.head = MODELS.build(head)
        self.projector = MODELS.build(projector)
        self.predictor = MODELS.build(predictor)
        self.loss_module = MODELS.build(loss)
        self.roi_size = roi_size
        self.momentum_encoder = CosineEMA(self._online_encoder(), base_momentum)

    def _online_encoder(self) -> nn.ModuleDict:
        """The online modules that have a momentum copy (the official
        ``encoder``, which holds res5, and ``projector``)."""
        return nn.ModuleDict(dict(backbone=self.backbone, head=self.head,
                                  projector=self.projector))

    def extract_feat(self, inputs: List[Tensor], data_samples=None) -> Tuple[Tensor, ...]:
        """C4 of the first view."""
        return tuple(self.backbone(inputs[0]))

    def loss(self, inputs: List[Tensor], data_samples: List[BaseDataElement]) -> Dict[str, Tensor]:
        view1, view2 = (_stack_box_set(data_samples, f'regions_{name}') for name in ('1_2', '2'))
        online = self._online_encoder()
        pred1 = self._embed(online, inputs[0], view1['boxes'], predict=True)
        pred2 = self._embed(online, inputs[1], view2['boxes'], predict=True)
        with torch.no_grad():
            self.momentum_encoder.update_parameters(online)
            target_net = self.momentum_encoder.module
            target1 = self._embed(target_net, inputs[0], view1['boxes'], predict=False)
            target2 = self._embed(target_net, inputs[1], view2['boxes'], predict=False)
        # Same proposal id: a match (one level, so every box is "assigned" to it).
        match = box_correspondence(view1['ids'], torch.zeros_like(view1['ids']), view2['ids'],
                                   torch.zeros_like(view2['ids']), num_levels=1)
        # In float32 under mixed precision too: autocast would run the similarities'
        # bmm in its low-precision dtype.
        with torch.autocast(device_type=pred1.device.type, enabled=False):
            losses = dict(loss_v1_v2=self.loss_module(pred1, target2, match),
                          loss_v2_v1=self.loss_module(pred2, target1, match.transpose(1, 2)))
        losses['momentum'] = torch.tensor(
            self.momentum_encoder.momentum_at(self.momentum_encoder.num_updates - 1),
            dtype=torch.float64)
        return losses

    def _embed(self, net, view: Tensor, boxes: Tensor, predict: bool) -> Tensor:
        """Normalised embeddings of a view's boxes, ``(N, K, C)``
        (official ``SoCo_C4.py:114-134``, ``resnet.py:239-264``)."""
        n, k = boxes.shape[:2]
        (c4,) = net['backbone'](view)
        z = net['projector'](net['head'](roi_align_view_fractions(c4, boxes, self.roi_size)))
        if predict:
            z = self.predictor(z)
        # Normalised in float32 (the MLPs' output is in the autocast dtype under AMP).
        return F.normalize(z.float(), dim=1).view(n, k, -1)
