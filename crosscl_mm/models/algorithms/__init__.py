from .crosscl import CrossCL
from .detco import DetCo
from .soco import SoCo, SoCoC4

__all__ = ['CrossCL', 'DetCo', 'SoCo', 'SoCoC4']
