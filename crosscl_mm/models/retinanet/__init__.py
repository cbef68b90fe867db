from .detectron2_retinanet import Detectron2RetinaFPN, Detectron2RetinaHead

__all__ = ['Detectron2RetinaFPN', 'Detectron2RetinaHead']
