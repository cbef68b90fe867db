from .crosscl import CrossCL

__all__ = ['CrossCL']
