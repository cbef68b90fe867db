from .formatting import PackRegionPairInputs
from .loading import LoadImageRGB
from .regions import SlidingWindowRegions
from .views import PairedRandomResizedCrop, ViewColorAugment

__all__ = ['LoadImageRGB', 'PairedRandomResizedCrop', 'ViewColorAugment',
           'SlidingWindowRegions', 'PackRegionPairInputs']
