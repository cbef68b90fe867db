"""crosscl_mm: CrossCL self-supervised pretraining as an OpenMMLab plugin."""
from . import compat
from .version import __version__

compat.apply_all()

from . import datasets, engine, models  # noqa: E402,F401  (registers components)
from .registry import enable_package_configs, export_to_scope  # noqa: E402
from .utils.stack import SELFSUP_PACKAGES  # noqa: E402

# `_base_ = 'crosscl_mm::benchmarks/...'` in users' configs (mmengine only
# resolves packages it knows by name).
enable_package_configs()

# Let mmselfsup- or mmpretrain-scoped configs build our components by name.
EXPORTED_SCOPES = [scope for scope in SELFSUP_PACKAGES if export_to_scope(scope)]

__all__ = ['__version__', 'compat', 'EXPORTED_SCOPES']
