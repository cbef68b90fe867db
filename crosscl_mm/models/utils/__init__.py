from .cosine_ema import CosineEMA
from .key_queue import KeyQueue
from .momentum_encoder import MomentumEncoder
from .prroi_pool import hat_integral_weights, prroi_pool_1x1, region_embeddings
from .region_negatives import negative_pool_geometry

__all__ = ['CosineEMA', 'KeyQueue', 'MomentumEncoder', 'hat_integral_weights', 'prroi_pool_1x1',
           'region_embeddings', 'negative_pool_geometry']
