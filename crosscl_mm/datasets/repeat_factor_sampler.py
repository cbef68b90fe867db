"""detectron2's ``RepeatFactorTrainingSampler`` (LVIS's repeat-factor sampling)
as an mmengine sampler.

mmdet samples LVIS with ``ClassBalancedDataset``, which repeats each image
``ceil(r)`` times, once, when the dataset is built; detectron2 (v0.1-v0.6,
``data/samplers/distributed_sampler.py``) rounds ``r`` stochastically anew for
every pass over the data, so an image with ``r = 1.3`` appears once in 70% of
the passes and twice in 30%, 1.3 times on average rather than 2. This sampler
does what detectron2's does.
"""
import itertools
import math
from typing import Dict, Iterator, Optional, Sequence

import torch
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import Sampler

from crosscl_mm.registry import DATA_SAMPLERS


def repeat_factors_from_category_frequency(image_categories: Sequence[Sequence[int]],
                                           repeat_thresh: float) -> torch.Tensor:
    """Per-image repeat factors (LVIS paper, appendix B.2), as detectron2 computes them.

    ``f(c)`` is the fraction of the images that contain category ``c``;
    ``r(c) = max(1, sqrt(t / f(c)))`` and an image's factor is the largest
    ``r(c)`` of its categories (1 for an image without any). Returned as
    float32, detectron2's dtype, which the stochastic rounding compares in.
    """
    counts: Dict[int, int] = {}
    for cats in image_categories:
        for cat in set(cats):
            counts[cat] = counts.get(cat, 0) + 1
    num_images = len(image_categories)
    category_repeat = {cat: max(1.0, math.sqrt(repeat_thresh / (n / num_images)))
                       for cat, n in counts.items()}
    return torch.tensor([max((category_repeat[c] for c in set(cats)), default=1.0)
                         for cats in image_categories], dtype=torch.float32)


@DATA_SAMPLERS.register_module()
class RepeatFactorInfiniteSampler(Sampler):
    """An endless stream of dataset indices in which image ``i`` appears
    ``r_i`` times per pass on average (detectron2's
    ``DATALOADER.SAMPLER_TRAIN: "RepeatFactorTrainingSampler"``).

    Every pass draws, from one generator seeded with ``seed``, a uniform
    number per image; image ``i`` is repeated ``floor(r_i)`` times plus one
    if that number is below ``r_i - floor(r_i)``; the pass's indices are then
    shuffled with the same generator. Rank ``k`` of ``w`` takes elements
    ``k, k + w, k + 2w, ...`` of the stream, as mmengine's InfiniteSampler
    and detectron2's samplers do. The factors come from ``dataset.get_cat_ids``
    (mmdet's datasets: the labels of each image's instances) after the
    dataset's own filtering, as detectron2 computes them after dropping
    images without annotations.

    Args:
        dataset: the training dataset (``get_cat_ids(index)``, ``len``).
        repeat_thresh: detectron2's ``DATALOADER.REPEAT_THRESHOLD``.
        shuffle: shuffle each pass. Defaults to True.
        seed: the generator's seed, the same on every rank; None draws one
            and shares it across ranks (mmengine's ``sync_random_seed``).
    """

    def __init__(self, dataset, repeat_thresh: float, shuffle: bool = True,
                 seed: Optional[int] = None) -> None:
        if not repeat_thresh > 0:
            raise ValueError(f'repeat_thresh must be positive, got {repeat_thresh!r}')
        self.dataset = dataset
        self.repeat_thresh = repeat_thresh
        self.shuffle = shuffle
        self.seed = sync_random_seed() if seed is None else int(seed)
        self.rank, self.world_size = get_dist_info()
        self.repeat_factors = repeat_factors_from_category_frequency(
            [dataset.get_cat_ids(i) for i in range(len(dataset))], repeat_thresh)
        self._int_part = torch.trunc(self.repeat_factors)
        self._frac_part = self.repeat_factors - self._int_part

    def _epoch_indices(self, generator: torch.Generator) -> torch.Tensor:
        rands = torch.rand(len(self._frac_part), generator=generator)
        repeats = (self._int_part + (rands < self._frac_part).float()).long()
        return torch.repeat_interleave(torch.arange(len(repeats)), repeats)

    def _infinite_indices(self) -> Iterator[int]:
        generator = torch.Generator()
        generator.manual_seed(self.seed)
        while True:
            indices = self._epoch_indices(generator)
            if self.shuffle:
                indices = indices[torch.randperm(len(indices), generator=generator)]
            yield from indices.tolist()

    def __iter__(self) -> Iterator[int]:
        yield from itertools.islice(self._infinite_indices(), self.rank, None, self.world_size)

    def __len__(self) -> int:
        """The expected length of one pass, per rank (the stream is endless)."""
        return math.ceil(float(self.repeat_factors.sum()) / self.world_size)

    def set_epoch(self, epoch: int) -> None:
        """Nothing to do: the stream does not restart (mmengine calls it)."""
