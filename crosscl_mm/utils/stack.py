"""Which self-supervised package sits beside mmdet in this environment.

crosscl_mm runs in two environments (``requirements/mmselfsup.txt`` and
``requirements/mmpretrain.txt``): mmselfsup 1.x + mmcls, or mmpretrain 1.x.
mmdet cannot import both (mmdet 3.3 imports mmpretrain when it is installed,
and both register ``ResLayerExtraNorm``), so exactly one is present. Tools
that compare against the packages' own MoCo v2 / DenseCL take the baseline
configs from here. Nothing here imports either package.
"""
import importlib.util
from typing import Optional

SELFSUP_PACKAGES = ('mmselfsup', 'mmpretrain')

# The packages keep the same configs under different folders.
_BASELINE_CONFIGS = {
    'mmselfsup': {
        'mocov2': 'mmselfsup::selfsup/mocov2/mocov2_resnet50_8xb32-coslr-200e_in1k.py',
        'densecl': 'mmselfsup::selfsup/densecl/densecl_resnet50_8xb32-coslr-200e_in1k.py',
    },
    'mmpretrain': {
        'mocov2': 'mmpretrain::mocov2/mocov2_resnet50_8xb32-coslr-200e_in1k.py',
        'densecl': 'mmpretrain::densecl/densecl_resnet50_8xb32-coslr-200e_in1k.py',
    },
}


def selfsup_package() -> Optional[str]:
    """``'mmselfsup'`` or ``'mmpretrain'``, whichever is installed (None if neither)."""
    for name in SELFSUP_PACKAGES:
        if importlib.util.find_spec(name) is not None:
            return name
    return None


def baseline_config(algo: str, package: Optional[str] = None) -> str:
    """The ``package::path`` of the package's own ResNet-50 config for ``algo``
    (``'mocov2'`` or ``'densecl'``), for ``_base_`` or ``Config.fromfile``."""
    package = package or selfsup_package()
    if package is None:
        raise RuntimeError('neither mmselfsup nor mmpretrain is installed; the MoCo v2 / DenseCL '
                           'baselines come from one of them (make install, or make install '
                           'ENV=mmpretrain)')
    try:
        return _BASELINE_CONFIGS[package][algo]
    except KeyError:
        raise ValueError(f'no {package} baseline named {algo!r}; '
                         f'expected one of {sorted(_BASELINE_CONFIGS[package])}') from None


def load_baseline_config(algo: str, view_size: Optional[int] = None,
                         package: Optional[str] = None):
    """The package's own config for ``algo``, parsed (an mmengine ``Config``).

    With ``view_size``, every ``RandomResizedCrop`` of its ``MultiView``
    pipeline crops to that size (mmselfsup's transform calls it ``size``,
    mmpretrain's ``scale``).
    """
    from mmengine.config import Config
    cfg = Config.fromstring(f"_base_ = '{baseline_config(algo, package)}'", file_format='.py')
    if view_size is not None:
        for t in cfg.train_dataloader.dataset.pipeline:
            for view in t.transforms if t.type == 'MultiView' else []:
                for v in view:
                    if v.type == 'RandomResizedCrop':
                        v['size' if 'size' in v else 'scale'] = view_size
    return cfg
