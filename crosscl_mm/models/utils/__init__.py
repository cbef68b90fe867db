from .cosine_ema import CosineEMA
from .key_queue import KeyQueue
from .momentum_encoder import MomentumEncoder
from .prroi_pool import hat_integral_weights, prroi_pool_1x1, region_embeddings
from .region_negatives import negative_pool_geometry
from .split_batch_norm import (SplitBatchNorm2d, convert_split_batch_norm,
                               warn_if_shuffle_bn_is_identity)

__all__ = ['CosineEMA', 'KeyQueue', 'MomentumEncoder', 'SplitBatchNorm2d',
           'convert_split_batch_norm', 'hat_integral_weights', 'prroi_pool_1x1',
           'region_embeddings', 'negative_pool_geometry', 'warn_if_shuffle_bn_is_identity']
