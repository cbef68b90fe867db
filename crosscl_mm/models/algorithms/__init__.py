from .crosscl import CrossCL
from .detco import DetCo
from .soco import SoCo

__all__ = ['CrossCL', 'DetCo', 'SoCo']
