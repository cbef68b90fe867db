from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.structures import BaseDataElement
from torch import Tensor, nn

from crosscl_mm.registry import MODELS
from crosscl_mm.utils import batch_shuffle, batch_unshuffle
from ..utils import (KeyQueue, MomentumEncoder, convert_split_batch_norm,
                     warn_if_shuffle_bn_is_identity)
from .base import PretrainingAlgorithm

Embeddings = Dict[str, Tensor]
TERMS = ('g2g', 'l2l', 'l2g')


@MODELS.register_module()
class DetCo(PretrainingAlgorithm):
    """DetCo: multi-level supervision and global-local contrast on MoCo v2.

    Implementation of `DetCo: Unsupervised Contrastive Learning for Object
    Detection` (Xie et al., ICCV 2021). The paper's pretraining code was
    never released; docs/detco.md lists every choice it leaves open and
    which source decided each one here.

    An online encoder (backbone + a global and a local head per stage) and
    its momentum copy see two global views ``I_q, I_k`` of an image and two
    jigsaw patch sets ``P_q, P_k`` of it. At each stage ``i`` (Res2-Res5)
    the global head gives ``q^g_i`` (``k^g_i``) and the local head gives
    ``q^l_i`` (``k^l_i``) from the concatenated features of the nine
    patches; all are L2-normalised. With one queue of past global keys and
    one of past local keys per stage (paper Fig. 2, "Queue_g/l")::

        L = sum_i w_i * (L^i_g2g + L^i_l2l + L^i_l2g)       (Eq. 1)
        L^i_g2g = InfoNCE(q^g_i, k^g_i, global queue i)     (Eq. 2)
        L^i_l2g = InfoNCE(q^l_i, k^g_i, global queue i)     (Eq. 4, L_g<->l(P_q, I_k))
        L^i_l2l = InfoNCE(q^l_i, k^l_i, local queue i)      (Eq. 5)

    then ``k^g_i`` enters global queue ``i`` and ``k^l_i`` local queue ``i``.
    Each of the twelve weighted terms is logged as ``loss_<stage>_<term>``
    (e.g. ``loss_res2_l2g``, already multiplied by ``w_i``) with its top-1
    accuracy ``acc_<stage>_<term>``.

    The key batches are shuffled across ranks before the momentum encoder
    (MoCo's shuffle BN): the global views and the patch sets each with their
    own permutation, and each key is unshuffled with its own batch's
    permutation (one unofficial port never unshuffles its local keys).

    Args:
        backbone: config of a backbone returning one map per stage, lowest
            first (an mmdet ``ResNet`` with ``out_indices=(0, 1, 2, 3)``).
        global_neck: config of every stage's global head; ``in_channels``,
            ``hid_channels`` and ``out_channels`` are set per stage.
        local_neck: config of every stage's local head (a
            :class:`PatchSetProjectionNeck`), completed the same way.
        level_names: names of the stages in the logs, lowest first.
        level_channels: channels ``C_i`` of each stage (ResNet-50:
            256, 512, 1024, 2048; ResNet-18: 64, 128, 256, 512).
        level_weights: ``w_i`` of each stage (Eq. 1), applied to all three
            of its terms. Default 0.1, 0.4, 0.7, 1.0 (DetCo.pytorch
            ``main_detco.py:305``; the paper says only "shallow < deep").
        global_hid_channels: hidden width of each stage's global head;
            ``None`` for ``C_i`` (both unofficial ports; 2048 at Res5 is
            MoCo v2's head).
        local_hid_channels: hidden width of each stage's local head; ``None``
            for ``C_i`` (Qianna00/openselfsup ``r50_marvel.py:39-62``).
            DetCo.pytorch uses ``9 * C_i`` (340M parameters at Res5).
        loss: config of the InfoNCE loss of every term (one temperature, as
            the paper's Eq. 2, 4, 5), or a dict with one config per term
            (``g2g``, ``l2l``, ``l2g``).
        queue_len: keys in each of the ``2 * len(level_names)`` queues.
        feat_dim: dimension of every embedding.
        momentum: momentum of the key encoder, ``k = m * k + (1 - m) * q``.
        shuffle_key_batches: MoCo's shuffle BN of the key batches (both
            unofficial ports); the paper does not say. ``False`` leaves each
            rank's key batch in place (e.g. with a SyncBN backbone).
        split_batch_bn: ``N > 1``: every BatchNorm2d of the backbones
            computes its statistics over N groups of each batch and, in one
            process, each key batch is permuted before the key encoder
            (MoCo's one-GPU demo; :class:`SplitBatchNorm2d`). 1 (default):
            plain BN; in one process shuffle BN is then the identity (a
            warning says so).
    """

    def __init__(self,
                 backbone: dict,
                 global_neck: dict = dict(type='GlobalProjectionNeck'),
                 local_neck: dict = dict(type='PatchSetProjectionNeck', num_patches=9),
                 level_names: Sequence[str] = ('res2', 'res3', 'res4', 'res5'),
                 level_channels: Sequence[int] = (256, 512, 1024, 2048),
                 level_weights: Sequence[float] = (0.1, 0.4, 0.7, 1.0),
                 global_hid_channels: Optional[Sequence[int]] = None,
                 local_hid_channels: Optional[Sequence[int]] = None,
                 loss: dict = dict(type='InfoNCELoss', temperature=0.2),
                 queue_len: int = 65536,
                 feat_dim: int = 128,
                 momentum: float = 0.999,
                 shuffle_key_batches: bool = True,
                 split_batch_bn: int = 1,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg=None) -> None:
        super().__init__(data_preprocessor, init_cfg)
        self.split_batch_bn = int(split_batch_bn)
        self.level_names = tuple(level_names)
        level_channels = tuple(level_channels)
        global_hid = tuple(global_hid_channels or level_channels)
        local_hid = tuple(local_hid_channels or level_channels)
        for field, values in (('level_channels', level_channels), ('level_weights', level_weights),
                              ('global_hid_channels', global_hid),
                              ('local_hid_channels', local_hid)):
            if len(values) != len(self.level_names):
                raise ValueError(f'DetCo: {field} has {len(values)} entries but level_names '
                                 f'{self.level_names} has {len(self.level_names)}')
        self.level_weights = dict(zip(self.level_names, (float(w) for w in level_weights)))

        self.backbone = MODELS.build(backbone)

        def heads(template, hidden):
            return nn.ModuleDict({
                level: MODELS.build(dict(template, in_channels=c, hid_channels=h,
                                         out_channels=feat_dim))
                for level, c, h in zip(self.level_names, level_channels, hidden)})

        self.global_necks = heads(global_neck, global_hid)
        self.local_necks = heads(local_neck, local_hid)
        self.num_patches = next(iter(self.local_necks.values())).num_patches
        term_losses = {term: loss for term in TERMS} if 'type' in loss else dict(loss)
        if set(term_losses) != set(TERMS):
            raise ValueError(f'DetCo: loss must be one loss config or one per term {TERMS}, '
                             f'got keys {sorted(term_losses)}')
        self.term_losses = nn.ModuleDict({t: MODELS.build(term_losses[t]) for t in TERMS})
        self.shuffle_key_batches = shuffle_key_batches
        convert_split_batch_norm(self._online_encoder(), self.split_batch_bn)

        self.momentum_encoder = MomentumEncoder(self._online_encoder(), 1 - momentum)
        self.queues = nn.ModuleDict({
            f'{level}_{kind}': KeyQueue(queue_len, feat_dim)
            for level in self.level_names for kind in ('global', 'local')})

    def _online_encoder(self) -> nn.ModuleDict:
        """The online modules under the names the momentum encoder uses
        (built on demand, so each appears once in the state dict)."""
        return nn.ModuleDict(dict(backbone=self.backbone, global_necks=self.global_necks,
                                  local_necks=self.local_necks))

    def _encode(self, encoder: nn.ModuleDict, img: Tensor,
                patches: Tensor) -> Tuple[Embeddings, Embeddings]:
        """Normalised global embeddings of ``img`` ``(N, 3, H, W)`` and local
        embeddings of ``patches`` ``(N, P, 3, h, w)`` per stage; the patch
        sets go through the backbone as one ``N * P`` batch."""
        global_maps = encoder['backbone'](img)
        patch_maps = encoder['backbone'](patches.flatten(0, 1))
        if len(global_maps) != len(self.level_names):
            raise ValueError(f'DetCo: the backbone returns {len(global_maps)} stages but '
                             f'level_names has {len(self.level_names)}')
        # Normalised in float32 under mixed precision (the InfoNCE softmax is float32 too).
        global_emb = {level: F.normalize(encoder['global_necks'][level](x).float(), dim=1)
                      for level, x in zip(self.level_names, global_maps)}
        local_emb = {level: F.normalize(encoder['local_necks'][level](x).float(), dim=1)
                     for level, x in zip(self.level_names, patch_maps)}
        return global_emb, local_emb

    @torch.no_grad()
    def _momentum_keys(self, img_k: Tensor, patches_k: Tensor) -> Tuple[Embeddings, Embeddings]:
        """``k^g`` and ``k^l`` per stage from the momentum encoder, with each
        key batch shuffled across ranks and its keys unshuffled."""
        unshuffle_global = unshuffle_local = None
        if self.shuffle_key_batches:
            in_process = self.split_batch_bn > 1
            img_k, unshuffle_global = batch_shuffle(img_k, in_process)
            patches_k, unshuffle_local = batch_shuffle(patches_k, in_process)
        k_global, k_local = self._encode(self.momentum_encoder.module, img_k, patches_k)
        return ({level: batch_unshuffle(k, unshuffle_global) for level, k in k_global.items()},
                {level: batch_unshuffle(k, unshuffle_local) for level, k in k_local.items()})

    def loss(self, inputs: List[Tensor],
             data_samples: Optional[List[BaseDataElement]] = None) -> Dict[str, Tensor]:
        img_q, img_k, patches_q, patches_k = inputs
        for name, patches in (('P_q', patches_q), ('P_k', patches_k)):
            if patches.dim() != 5 or patches.shape[1] != self.num_patches:
                raise ValueError(f'DetCo: {name} must be (N, {self.num_patches}, 3, h, w) patch '
                                 f'sets (the local head concatenates {self.num_patches}), '
                                 f'got {tuple(patches.shape)}')
        if self.shuffle_key_batches:
            warn_if_shuffle_bn_is_identity(type(self).__name__, self.split_batch_bn)
        q_global, q_local = self._encode(self._online_encoder(), img_q, patches_q)
        with torch.no_grad():
            self.momentum_encoder.update_parameters(self._online_encoder())
            k_global, k_local = self._momentum_keys(img_k, patches_k)

        losses = {}
        for level, weight in self.level_weights.items():
            global_queue = self.queues[f'{level}_global'].negatives()
            local_queue = self.queues[f'{level}_local'].negatives()
            terms = dict(g2g=(q_global[level], k_global[level], global_queue),  # Eq. 2
                         l2l=(q_local[level], k_local[level], local_queue),     # Eq. 5
                         l2g=(q_local[level], k_global[level], global_queue))   # Eq. 4
            for term, (query, key, negatives) in terms.items():
                loss, accuracy = self.term_losses[term](query, key, negatives)
                losses[f'loss_{level}_{term}'] = weight * loss
                losses[f'acc_{level}_{term}'] = accuracy

        for level in self.level_names:
            self.queues[f'{level}_global'].push(k_global[level])
            self.queues[f'{level}_local'].push(k_local[level])
        return losses
