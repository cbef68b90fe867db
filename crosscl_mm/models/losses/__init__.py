from .info_nce import InfoNCELoss

__all__ = ['InfoNCELoss']
