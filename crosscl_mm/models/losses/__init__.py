from .info_nce import InfoNCELoss
from .matched_cosine import MatchedCosineLoss

__all__ = ['InfoNCELoss', 'MatchedCosineLoss']
