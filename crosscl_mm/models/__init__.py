from .algorithms import *  # noqa: F401,F403
from .data_preprocessor import RegionPairDataPreprocessor
from .losses import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
from .utils import negative_pool_geometry, prroi_pool_1x1

__all__ = ['RegionPairDataPreprocessor', 'negative_pool_geometry', 'prroi_pool_1x1']
