"""Pieces for AdelaiDet's FCOS and SOLOv2 (the DenseCL protocols) that mmdet's
FCOS cannot express as it stands. Imported when the registry is first asked
for a name (crosscl_mm/registry.py), as they import mmdet's model zoo."""
from .adelaidet_fcos_head import AdelaiDetFCOSHead
from .adelaidet_giou_loss import AdelaiDetGIoULoss, adelaidet_giou_loss
from .fpn_plain_top_levels import FPNPlainTopLevels

__all__ = ['AdelaiDetFCOSHead', 'AdelaiDetGIoULoss', 'FPNPlainTopLevels', 'adelaidet_giou_loss']
