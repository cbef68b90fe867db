from .crosscl import CrossCL
from .detco import DetCo
from .regioncl import RegionCLD, RegionCLM
from .soco import SoCo, SoCoC4

__all__ = ['CrossCL', 'DetCo', 'RegionCLD', 'RegionCLM', 'SoCo', 'SoCoC4']
