from .global_projection import GlobalProjectionNeck
from .top_down_fpn import TopDownFPN

__all__ = ['GlobalProjectionNeck', 'TopDownFPN']
