from .cosine_ema import CosineEMA
from .key_queue import KeyQueue
from .prroi_pool import hat_integral_weights, prroi_pool_1x1
from .region_negatives import negative_pool_geometry

__all__ = ['CosineEMA', 'KeyQueue', 'hat_integral_weights', 'prroi_pool_1x1',
           'negative_pool_geometry']
