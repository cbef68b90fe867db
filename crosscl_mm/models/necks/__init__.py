from .box_head import ConvFCBoxHead, ProjectionMLP
from .global_projection import GlobalProjectionNeck
from .top_down_fpn import TopDownFPN

__all__ = ['ConvFCBoxHead', 'GlobalProjectionNeck', 'ProjectionMLP', 'TopDownFPN']
