import math
from typing import Tuple


def negative_pool_geometry(img_size: int) -> Tuple[int, int]:
    """Kernel and stride of the average pooling that turns a key feature map
    into region negatives, for a square input of side ``img_size``.

    The reference picks 3/1 at 224, 4/2 at 384 and 5/2 at 480 (about 144, 121
    and 169 negatives per P4 map). ``kernel = ceil(size / 96)`` and
    ``stride = ceil(size / 320)`` reproduce all three and extend the rule to
    any size: the pooled region grows with the image, and the stride doubles
    once the map is large enough that stride 1 would mostly repeat neighbours.
    """
    if img_size <= 0:
        raise ValueError(f'img_size must be positive, got {img_size}')
    return math.ceil(img_size / 96), math.ceil(img_size / 320)
