"""detectron2's per-parameter learning rate and weight decay, version by version.

The seeds fine-tuned with different detectron2 releases, and ``build_optimizer``
(``detectron2/solver/build.py``) assigns weight decay differently across them:

- v0.1-v0.3: parameters of norm layers get ``WEIGHT_DECAY_NORM``; *other*
  parameters named ``bias`` get ``WEIGHT_DECAY_BIAS`` and ``BASE_LR *
  BIAS_LR_FACTOR``; the rest ``WEIGHT_DECAY``.
- v0.4-v0.5: norm parameters get ``WEIGHT_DECAY_NORM``, then the bias override
  is applied to every parameter named ``bias``, norm biases included.
- v0.6: as v0.4-v0.5, but ``WEIGHT_DECAY_BIAS`` defaults to ``None``, which
  means "follow ``WEIGHT_DECAY``" (no bias override).

Up to v0.5, ``defaults.py`` binds ``_C.SOLVER.WEIGHT_DECAY_BIAS =
_C.SOLVER.WEIGHT_DECAY`` when it loads, i.e. to 1e-4: a YAML that sets
``WEIGHT_DECAY: 2.5e-5`` and not ``WEIGHT_DECAY_BIAS`` still decays biases by
1e-4. mmengine's ``paramwise_cfg`` cannot say "norm biases like other biases but
norm weights not at all", so configs name the detectron2 version instead.
"""
from typing import Dict, List, Optional

import torch
from mmengine.optim import DefaultOptimWrapperConstructor

from crosscl_mm.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS, OPTIMIZERS

# detectron2's norm_module_types; _BatchNorm covers BatchNorm1d/2d/3d, SyncBatchNorm
# and detectron2's NaiveSyncBatchNorm (a BatchNorm2d), _InstanceNorm the three
# InstanceNorms.
NORM_MODULE_TYPES = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.GroupNorm,
                     torch.nn.modules.instancenorm._InstanceNorm, torch.nn.LayerNorm,
                     torch.nn.LocalResponseNorm)
# ``_C.SOLVER.WEIGHT_DECAY`` in defaults.py, v0.1-v0.6.
DEFAULT_WEIGHT_DECAY = 1e-4
# The releases whose bias rule differs (see the module docstring).
BIAS_RULES = {'0.1': 'non-norm', '0.2': 'non-norm', '0.3': 'non-norm',
              '0.4': 'all', '0.5': 'all', '0.6': 'all'}


def _version_key(version) -> str:
    key = '.'.join(str(version).lstrip('v').split('.')[:2])
    if key not in BIAS_RULES:
        raise ValueError(f'detectron2_version {version!r} is not one of '
                         f'{sorted(BIAS_RULES)} (v0.1-v0.6)')
    return key


def default_weight_decay_bias(version) -> Optional[float]:
    """``SOLVER.WEIGHT_DECAY_BIAS`` when a YAML does not set it: bound to
    1e-4 when defaults.py loads (v0.1-v0.5); ``None`` from v0.6, where biases
    keep the decay their layer gets (``WEIGHT_DECAY``, or
    ``WEIGHT_DECAY_NORM`` in a norm layer)."""
    return None if _version_key(version) == '0.6' else DEFAULT_WEIGHT_DECAY


def detectron2_param_groups(model: torch.nn.Module, version, base_lr: float,
                            weight_decay: float, weight_decay_norm: float = 0.0,
                            weight_decay_bias: Optional[float] = None,
                            bias_lr_factor: float = 1.0) -> List[Dict]:
    """Parameter groups as ``build_optimizer`` of detectron2 ``version`` makes
    them from the ``SOLVER`` keys, merged by equal ``(lr, weight_decay)``.

    Args:
        model: the detector.
        version: detectron2 release, e.g. ``'0.3'`` or ``'v0.6'``.
        base_lr: ``SOLVER.BASE_LR``.
        weight_decay: ``SOLVER.WEIGHT_DECAY``.
        weight_decay_norm: ``SOLVER.WEIGHT_DECAY_NORM``.
        weight_decay_bias: ``SOLVER.WEIGHT_DECAY_BIAS`` where the YAML sets
            it; ``None`` takes that release's default
            (:func:`default_weight_decay_bias`).
        bias_lr_factor: ``SOLVER.BIAS_LR_FACTOR``.

    Frozen parameters (``requires_grad=False``) and repeated (tied) ones are
    left out, as detectron2 does.
    """
    rule = BIAS_RULES[_version_key(version)]
    if weight_decay_bias is None:
        weight_decay_bias = default_weight_decay_bias(version)
    groups: Dict[tuple, Dict] = {}
    seen = set()
    for module in model.modules():
        is_norm = isinstance(module, NORM_MODULE_TYPES)
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or param in seen:
                continue
            seen.add(param)
            lr, decay = base_lr, weight_decay
            if is_norm:
                decay = weight_decay_norm
            if name == 'bias' and (rule == 'all' or not is_norm):
                lr = base_lr * bias_lr_factor
                if weight_decay_bias is not None:
                    decay = weight_decay_bias
            group = groups.setdefault((lr, decay), dict(params=[], lr=lr, weight_decay=decay))
            group['params'].append(param)
    return list(groups.values())


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class Detectron2OptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Builds the optimizer with :func:`detectron2_param_groups`.

    ``optimizer.lr`` and ``optimizer.weight_decay`` are ``SOLVER.BASE_LR`` and
    ``SOLVER.WEIGHT_DECAY``; ``paramwise_cfg`` holds the rest::

        optim_wrapper = dict(
            optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4),
            constructor='crosscl_mm.Detectron2OptimWrapperConstructor',
            paramwise_cfg=dict(detectron2_version='0.3', weight_decay_norm=0.0))

    ``paramwise_cfg`` keys: ``detectron2_version`` (required),
    ``weight_decay_norm`` (default 0.0, detectron2's), and, only where the
    source YAML sets them, ``weight_decay_bias`` and ``bias_lr_factor``.
    """

    KEYS = ('detectron2_version', 'weight_decay_norm', 'weight_decay_bias', 'bias_lr_factor')

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None) -> None:
        paramwise_cfg = dict(paramwise_cfg or {})
        unknown = sorted(set(paramwise_cfg) - set(self.KEYS))
        if unknown or 'detectron2_version' not in paramwise_cfg:
            raise ValueError(
                'Detectron2OptimWrapperConstructor: paramwise_cfg takes '
                f'{list(self.KEYS)} with detectron2_version required; got {sorted(paramwise_cfg)}')
        _version_key(paramwise_cfg['detectron2_version'])
        self.detectron2_cfg = paramwise_cfg
        super().__init__(optim_wrapper_cfg, None)

    def __call__(self, model: torch.nn.Module):
        if hasattr(model, 'module'):
            model = model.module
        optimizer_cfg = self.optimizer_cfg.copy()
        cfg = self.detectron2_cfg
        optimizer_cfg['params'] = detectron2_param_groups(
            model, cfg['detectron2_version'], base_lr=optimizer_cfg['lr'],
            weight_decay=optimizer_cfg.get('weight_decay', 0.0),
            weight_decay_norm=cfg.get('weight_decay_norm', 0.0),
            weight_decay_bias=cfg.get('weight_decay_bias'),
            bias_lr_factor=cfg.get('bias_lr_factor', 1.0))
        optimizer = OPTIMIZERS.build(optimizer_cfg)
        wrapper_cfg = self.optim_wrapper_cfg.copy()
        wrapper_cfg.setdefault('type', 'OptimWrapper')
        return OPTIM_WRAPPERS.build(wrapper_cfg, default_args=dict(optimizer=optimizer))
