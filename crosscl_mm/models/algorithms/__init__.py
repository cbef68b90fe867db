from .crosscl import CrossCL
from .detco import DetCo

__all__ = ['CrossCL', 'DetCo']
