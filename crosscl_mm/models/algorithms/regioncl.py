"""RegionCL: contrastive region pairs by region swapping (Xu et al., ECCV 2022).

Two variants, each as the code behind its published numbers ran it
(``docs/regioncl.md`` lists the sources, every bug and our default):

- :class:`RegionCLM`, RegionCL on MoCo v2: the official code
  (Annbless/RegionCL ``openselfsup/models/RegionCLM.py``);
- :class:`RegionCLD`, RegionCL on DenseCL: the only public code, a
  third-party DenseCL (CoinCheung/DenseCL ``--cutmix``: ``densecl/builder.py``,
  ``cutmix.py``, ``resnet.py``, ``main_densecl.py:323-326``). With its region
  weight at 0 it is that repository's DenseCL.

Both add the same region term to their instance loss. The query view's
batch gets one box (per step and rank); composite ``i`` has the box of image
``partner[i]`` pasted in. The query backbone runs on the composites (a second
forward with its own BN statistics, as both codes do); on its C5 map the
paste feature is the mean over the box cells, the canvas feature the mean
over the rest; both go through the instance projection MLP. With ``k_i`` the
key of image ``i``, ``Q`` the queue and ``sg`` stop-gradient::

    L_region = CE over 2B rows, temperature T:
      canvas i:  [c_i.k_i | c_i.sg(p on composite i) | c_i.Q]
      paste  j:  [p_j.k_j | p_j.sg(canvas under p_j) | p_j.Q]

(``RegionCLM.py:241-265``, ``cutmix.py:38-65``). Region features are never
enqueued. The official code calls a ``head2`` that it never defines (B1):
one loss head, ``loss``, serves every term here (the official head has no
parameters, so a second identical one is the same function).
"""
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.structures import BaseDataElement
from torch import Tensor, nn

from crosscl_mm.registry import MODELS
from crosscl_mm.utils import batch_shuffle, batch_unshuffle, get_world_size
from ..utils import KeyQueue, MomentumEncoder
from ..utils.region_swap import (BOX_SAMPLERS, PAIRINGS, PASTE_INTRA_NEGATIVES, SwapBox,
                                 box_cells, check_pairing, region_contrast_rows, region_pool,
                                 swap_regions)
from .base import PretrainingAlgorithm


class _RegionSwapContrast(PretrainingAlgorithm):
    """What RegionCL-M and RegionCL-D share: the swap, the region term, the
    queue of instance keys, the momentum encoder and the start-up checks.

    Args:
        swap: ``sampler`` (``'official'``: RegionCL-M's rounded and clamped
            start, :func:`sample_official_box`; ``'grid'``: RegionCL-D's,
            :func:`sample_grid_box`), ``pairing`` (``'reversal'`` or
            ``'random'``), ``min_cells``, ``max_cells`` (box sides in cells;
            3 and 5 in both recipes) and ``stride`` (input pixels per C5 cell).
        paste_intra_negative: ``'as_released'`` (the canvas ``c[partner]``,
            the released codes' indexing) or ``'corrected'`` (the canvas
            the paste lies on, ``c[argsort(partner)]``); they agree under
            the reversal pairing (:func:`region_contrast_rows`).
    """

    def __init__(self, backbone: dict, neck: dict, loss: dict, swap: dict,
                 paste_intra_negative: str, loss_weights: Dict[str, float], queue_len: int,
                 feat_dim: int, data_preprocessor, init_cfg) -> None:
        super().__init__(data_preprocessor, init_cfg)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck)
        self.loss_module = MODELS.build(loss)  # every term (B1: head2 is the same head)
        swap = dict(swap)
        self.box_sampler = swap.pop('sampler')
        self.pairing = swap.pop('pairing')
        if self.box_sampler not in BOX_SAMPLERS:
            raise ValueError(f'swap.sampler must be one of {sorted(BOX_SAMPLERS)}, '
                             f'got {self.box_sampler!r}')
        if self.pairing not in PAIRINGS:
            raise ValueError(f'swap.pairing must be one of {sorted(PAIRINGS)}, '
                             f'got {self.pairing!r}')
        unknown = set(swap) - {'min_cells', 'max_cells', 'stride'}
        if unknown:
            raise ValueError(f'swap: unknown keys {sorted(unknown)}')
        self.swap_cells = (int(swap.get('min_cells', 3)), int(swap.get('max_cells', 5)))
        self.stride = int(swap.get('stride', 32))
        if paste_intra_negative not in PASTE_INTRA_NEGATIVES:
            raise ValueError(f'paste_intra_negative must be one of {PASTE_INTRA_NEGATIVES}, '
                             f'got {paste_intra_negative!r}')
        self.paste_intra_negative = paste_intra_negative
        self.loss_weights = {name: float(w) for name, w in loss_weights.items()}
        self.queue_len = queue_len
        self.instance_queue = KeyQueue(queue_len, feat_dim)

    # ---- checks and the swap ------------------------------------------------

    def _check_batch(self, img: Tensor) -> None:
        """Refuse, before any forward, what the official code would get
        wrong or assert on: an odd batch under the reversal pairing (B4),
        images smaller than the largest box (B10), a queue that the global
        batch does not divide (``RegionCLM.py:110``)."""
        height, width = img.shape[-2:]
        if self.loss_weights.get('loss_region', 1.0):
            check_pairing(self.pairing, img.shape[0])
            BOX_SAMPLERS[self.box_sampler][1](height, width, *self.swap_cells, self.stride)
        global_batch = img.shape[0] * get_world_size()
        if self.queue_len % global_batch:
            raise ValueError(f'{type(self).__name__}: queue_len {self.queue_len} is not a '
                             f'multiple of the global batch {global_batch} ({img.shape[0]} per '
                             f'process x {get_world_size()}), as the official queue requires')

    def draw_swap(self, img: Tensor) -> Tuple[SwapBox, Tensor]:
        """One box for the rank's batch, then the partners, from torch's
        default generator (the official draws and order)."""
        height, width = img.shape[-2:]
        box = BOX_SAMPLERS[self.box_sampler][0](height, width, *self.swap_cells,
                                                stride=self.stride)
        return box, PAIRINGS[self.pairing](img.shape[0])

    def region_loss(self, img_q: Tensor, box: SwapBox, partner: Tensor, k: Tensor,
                    negatives: Tensor) -> Tuple[Tensor, Tensor]:
        """``L_region`` on the composites of ``img_q`` (module docstring)."""
        composites = swap_regions(img_q, box, partner)
        c5 = self.backbone(composites)[-1]
        paste, canvas = region_pool(c5, box_cells(box, self.stride))
        # One pass through the MLP for canvases and pastes (necks.py:236-237).
        embedded = F.normalize(self.neck(torch.cat([canvas, paste])[..., None, None]), dim=1)
        canvas, paste = embedded.chunk(2)
        queries, intra = region_contrast_rows(canvas, paste, partner, self.paste_intra_negative)
        return self.loss_module(queries, torch.cat([k, k]), negatives, row_negatives=intra)

    def weighted(self, losses: Dict[str, Tensor]) -> Dict[str, Tensor]:
        for name, weight in self.loss_weights.items():
            if name in losses and weight != 1.0:
                losses[name] = losses[name] * weight
        return losses


@MODELS.register_module()
class RegionCLM(_RegionSwapContrast):
    """RegionCL-M: MoCo v2 plus the region term (official code).

    ``L = L_instance + L_region`` (weights 1 and 1: OpenSelfSup sums every
    ``loss*`` key, ``apis/train.py:49``), both with temperature 0.2 and the
    queue of instance keys; ``L_instance`` is MoCo v2's InfoNCE of
    ``q = mlp(avgpool(f(x_q)))`` against ``k`` from the momentum encoder
    (constant momentum 0.999, shuffle BN on the key batch). The swap is
    drawn before anything else (``RegionCLM.py:213``), with the official
    box sampler and the reversal pairing by default.

    Logged: ``loss_instance``, ``loss_region`` (weighted) and their top-1
    accuracies ``acc_instance``, ``acc_region``. ``loss_region: 0`` skips the
    swap: MoCo v2.

    Args:
        backbone: a backbone whose last output is C5 (mmdet ``ResNet``,
            ``out_indices=(3,)``).
        neck: the projection shared by instance and region features
            (:class:`GlobalProjectionNeck`, 2048-2048-128).
        loss: the InfoNCE loss of both terms.
        swap, paste_intra_negative: see :class:`_RegionSwapContrast`.
        loss_weights: ``loss_instance`` and ``loss_region``.
        queue_len, feat_dim: the queue of instance keys.
        momentum: ``m`` of ``k = m * k + (1 - m) * q``.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict = dict(type='GlobalProjectionNeck'),
                 loss: dict = dict(type='InfoNCELoss', temperature=0.2),
                 swap: dict = dict(sampler='official', pairing='reversal', min_cells=3,
                                   max_cells=5, stride=32),
                 paste_intra_negative: str = 'as_released',
                 loss_weights: Dict[str, float] = dict(loss_instance=1.0, loss_region=1.0),
                 queue_len: int = 65536,
                 feat_dim: int = 128,
                 momentum: float = 0.999,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg=None) -> None:
        super().__init__(backbone, neck, loss, swap, paste_intra_negative, loss_weights,
                         queue_len, feat_dim, data_preprocessor, init_cfg)
        self.momentum_encoder = MomentumEncoder(self._online_encoder(), 1 - momentum)

    def _online_encoder(self) -> nn.ModuleDict:
        return nn.ModuleDict(dict(backbone=self.backbone, neck=self.neck))

    def loss(self, inputs: List[Tensor],
             data_samples: Optional[List[BaseDataElement]] = None) -> Dict[str, Tensor]:
        img_q, img_k = inputs[:2]
        self._check_batch(img_q)
        with_region = bool(self.loss_weights.get('loss_region', 1.0))
        if with_region:  # drawn before anything else, as RegionCLM.py:213
            box, partner = self.draw_swap(img_q)
        q = F.normalize(self.neck(self.backbone(img_q)[-1]), dim=1)
        with torch.no_grad():
            self.momentum_encoder.update_parameters(self._online_encoder())
            shuffled, unshuffle = batch_shuffle(img_k)
            key_encoder = self.momentum_encoder.module
            k = F.normalize(key_encoder['neck'](key_encoder['backbone'](shuffled)[-1]), dim=1)
            k = batch_unshuffle(k, unshuffle)

        negatives = self.instance_queue.negatives()
        losses = {}
        losses['loss_instance'], losses['acc_instance'] = self.loss_module(q, k, negatives)
        if with_region:
            losses['loss_region'], losses['acc_region'] = self.region_loss(
                img_q, box, partner, k, negatives)
        self.instance_queue.push(k)
        return self.weighted(losses)


@MODELS.register_module()
class RegionCLD(_RegionSwapContrast):
    """RegionCL-D: DenseCL plus the region term (CoinCheung/DenseCL ``--cutmix``).

    DenseCL (``builder.py:139-206``): the global term is MoCo v2's InfoNCE
    of ``q`` (avgpool, MLP) against ``k`` and the global queue; the dense
    term contrasts every cell ``s`` of the query's dense embedding
    ``dq_s = head(f(x_q))_s`` with the key's dense embedding at the cell
    whose backbone feature is most similar, ``dk_{argmax_t cos(f_q,s,
    f_k,t)}``, against the dense queue (which receives each key's mean dense
    embedding, normalised). Then the region term on global features, with
    the grid sampler and a random permutation, drawn after the keys
    (``builder.py:197-201``)::

        L = 0.5 * (L_global + L_dense) + 1.0 * L_region   (main_densecl.py:323-326)

    Logged: ``loss_global``, ``loss_dense``, ``loss_region`` (weighted) and
    ``acc_*``. ``loss_region: 0`` skips the swap: DenseCL as that repository
    ran it (the seed's DenseCL rows).

    Args:
        backbone: a backbone whose last output is C5.
        neck: the global projection (Linear-ReLU-Linear), also the region
            features' (``resnet.py:242-243``).
        dense_neck: the dense head (:class:`DenseProjectionNeck`).
        loss: InfoNCE of every term (``--moco-t 0.2``).
        swap, paste_intra_negative: see :class:`_RegionSwapContrast`; the
            default ``'as_released'`` reproduces ``cutmix.py:50``.
        loss_weights: ``loss_global``, ``loss_dense``, ``loss_region``.
        queue_len, feat_dim: each of the two queues.
        momentum: ``m`` of the key encoder.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict = dict(type='GlobalProjectionNeck'),
                 dense_neck: dict = dict(type='DenseProjectionNeck'),
                 loss: dict = dict(type='InfoNCELoss', temperature=0.2),
                 swap: dict = dict(sampler='grid', pairing='random', min_cells=3, max_cells=5,
                                   stride=32),
                 paste_intra_negative: str = 'as_released',
                 loss_weights: Dict[str, float] = dict(loss_global=0.5, loss_dense=0.5,
                                                       loss_region=1.0),
                 queue_len: int = 65536,
                 feat_dim: int = 128,
                 momentum: float = 0.999,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg=None) -> None:
        super().__init__(backbone, neck, loss, swap, paste_intra_negative, loss_weights,
                         queue_len, feat_dim, data_preprocessor, init_cfg)
        self.dense_neck = MODELS.build(dense_neck)
        self.dense_queue = KeyQueue(queue_len, feat_dim)
        self.momentum_encoder = MomentumEncoder(self._online_encoder(), 1 - momentum)

    def _online_encoder(self) -> nn.ModuleDict:
        return nn.ModuleDict(dict(backbone=self.backbone, neck=self.neck,
                                  dense_neck=self.dense_neck))

    @staticmethod
    def _encode(encoder, img: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """``q`` (normalised), the dense embedding ``(N, D, HW)`` (not
        normalised) and the C5 features ``(N, C, HW)``."""
        c5 = encoder['backbone'](img)[-1]
        return (F.normalize(encoder['neck'](c5), dim=1), encoder['dense_neck'](c5).flatten(2),
                c5.flatten(2))

    def loss(self, inputs: List[Tensor],
             data_samples: Optional[List[BaseDataElement]] = None) -> Dict[str, Tensor]:
        img_q, img_k = inputs[:2]
        self._check_batch(img_q)
        q, dense_q, feat_q = self._encode(self._online_encoder(), img_q)
        dense_q = F.normalize(dense_q, dim=1)
        with torch.no_grad():
            self.momentum_encoder.update_parameters(self._online_encoder())
            shuffled, unshuffle = batch_shuffle(img_k)
            k, dense_k, feat_k = (batch_unshuffle(t, unshuffle) for t in
                                  self._encode(self.momentum_encoder.module, shuffled))
            # Each query cell's positive: the key cell of most similar backbone feature.
            cosine = torch.einsum('nca,ncb->nab', F.normalize(feat_q, dim=1),
                                  F.normalize(feat_k, dim=1))
            match = cosine.argmax(dim=2)
            dense_pos = F.normalize(dense_k, dim=1).gather(
                2, match.unsqueeze(1).expand(-1, dense_k.shape[1], -1))

        negatives = self.instance_queue.negatives()
        losses = {}
        losses['loss_global'], losses['acc_global'] = self.loss_module(q, k, negatives)
        losses['loss_dense'], losses['acc_dense'] = self.loss_module(
            dense_q.transpose(1, 2).flatten(0, 1), dense_pos.transpose(1, 2).flatten(0, 1),
            self.dense_queue.negatives())
        if self.loss_weights.get('loss_region', 1.0):
            box, partner = self.draw_swap(img_q)
            losses['loss_region'], losses['acc_region'] = self.region_loss(
                img_q, box, partner, k, negatives)
        self.instance_queue.push(k)
        self.dense_queue.push(F.normalize(dense_k.mean(dim=2), dim=1))
        return self.weighted(losses)
