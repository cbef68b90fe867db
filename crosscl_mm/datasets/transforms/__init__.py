from .formatting import PackRegionPairInputs
from .global_local_views import JigsawPatches, MultiViewRandomResizedCrop, ViewRandAugment
from .loading import LoadImageRGB
from .regions import SlidingWindowRegions
from .soco_views import CutoutInBoxes, LoadProposals, SoCoViews
from .views import PairedRandomResizedCrop, ViewColorAugment

__all__ = ['LoadImageRGB', 'PairedRandomResizedCrop', 'ViewColorAugment',
           'SlidingWindowRegions', 'PackRegionPairInputs', 'MultiViewRandomResizedCrop',
           'ViewRandAugment', 'JigsawPatches', 'LoadProposals', 'SoCoViews', 'CutoutInBoxes']
