from .box_head import ConvFCBoxHead, ProjectionMLP, Res5BoxHead
from .dense_projection import DenseProjectionNeck
from .global_projection import GlobalProjectionNeck
from .patch_set_projection import PatchSetProjectionNeck
from .top_down_fpn import TopDownFPN

__all__ = ['ConvFCBoxHead', 'DenseProjectionNeck', 'GlobalProjectionNeck', 'PatchSetProjectionNeck',
           'ProjectionMLP', 'Res5BoxHead', 'TopDownFPN']
