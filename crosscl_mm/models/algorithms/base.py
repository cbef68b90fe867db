from typing import Dict, List, Optional, Tuple, Union

from mmengine.model import BaseModel
from torch import Tensor

from crosscl_mm.registry import MODELS


class PretrainingAlgorithm(BaseModel):
    """What the pretraining algorithms here share (mmpretrain's
    ``BaseSelfSupervisor`` in small): the data preprocessor built in our
    scope, and the forward modes ``'loss'`` (:meth:`loss`, which a subclass
    writes as its paper) and ``'tensor'`` (backbone features of the first
    view). A subclass sets ``self.backbone``.

    Args:
        data_preprocessor: config or module; by default a
            :class:`RegionPairDataPreprocessor` with ImageNet's RGB statistics.
        init_cfg: MMEngine init config.
    """

    def __init__(self, data_preprocessor: Optional[Union[dict, object]] = None,
                 init_cfg=None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='RegionPairDataPreprocessor')
        if isinstance(data_preprocessor, dict):
            # Built here, in our scope: BaseModel would look in MMEngine's root registry.
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)

    def extract_feat(self, inputs: List[Tensor], data_samples=None) -> Tuple[Tensor, ...]:
        """Backbone features of the first view."""
        return self.backbone(inputs[0])

    def forward(self, inputs, data_samples=None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'tensor':
            return self.extract_feat(inputs)
        raise RuntimeError(f'{type(self).__name__} supports modes "loss" and "tensor", '
                           f'not {mode!r}')

    def loss(self, inputs: List[Tensor], data_samples) -> Dict[str, Tensor]:
        raise NotImplementedError
