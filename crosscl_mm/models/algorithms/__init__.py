from .crosscl import CrossCL
from .soco import SoCo

__all__ = ['CrossCL', 'SoCo']
