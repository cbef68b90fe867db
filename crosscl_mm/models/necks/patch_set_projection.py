from typing import Optional

from torch import Tensor

from crosscl_mm.registry import MODELS
from .global_projection import GlobalProjectionNeck


@MODELS.register_module()
class PatchSetProjectionNeck(GlobalProjectionNeck):
    """DetCo's local head ``mlp_local``: the features of an image's patches,
    each average-pooled, concatenated in the order of the patch stack, then
    MoCo v2's Linear-ReLU-Linear (paper section 3.3: "F_p is concatenated and
    fed to the local patch MLP head to get final representation q^l").

    For ``P`` patches of ``C`` channels the MLP takes ``P * C`` inputs, patch
    by patch (``[f_p1 | f_p2 | ... | f_pP]``), the layout both unofficial
    ports use (DetCo.pytorch ``detco/models.py:301``, Qianna00/openselfsup
    ``detco.py:224-235``).

    Args:
        in_channels: channels of one patch's feature map (``C``).
        num_patches: patches per image (``P``, 9 for a 3x3 jigsaw).
        hid_channels: hidden width of the MLP.
        out_channels: dimension of the embedding that enters the queue.
        norm_cfg: optional norm after the hidden Linear; none by default.
        init_cfg: MMEngine init config.
    """

    def __init__(self, in_channels: int = 2048, num_patches: int = 9, hid_channels: int = 2048,
                 out_channels: int = 128, norm_cfg: Optional[dict] = None, init_cfg=None) -> None:
        super().__init__(in_channels * num_patches, hid_channels, out_channels, norm_cfg, init_cfg)
        self.num_patches = num_patches

    def forward(self, x: Tensor) -> Tensor:
        """``(N * P, C, H, W)``, the ``P`` patches of each image consecutive,
        -> ``(N, out_channels)`` (not normalised)."""
        if x.shape[0] % self.num_patches:
            raise ValueError(f'PatchSetProjectionNeck: a batch of {x.shape[0]} patch maps is not '
                             f'a whole number of {self.num_patches}-patch sets')
        pooled = x.mean(dim=(2, 3))
        return self.mlp(pooled.reshape(-1, self.num_patches * pooled.shape[1]))
