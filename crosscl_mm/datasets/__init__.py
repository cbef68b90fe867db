from .image_folder import IMAGE_EXTENSIONS, UnlabeledImageFolder, scan_image_folder
from .proposals_folder import ProposalsFolder
from .repeat_factor_sampler import RepeatFactorInfiniteSampler
from .transforms import *  # noqa: F401,F403

__all__ = ['IMAGE_EXTENSIONS', 'UnlabeledImageFolder', 'scan_image_folder', 'ProposalsFolder']
__all__ += ['RepeatFactorInfiniteSampler']
