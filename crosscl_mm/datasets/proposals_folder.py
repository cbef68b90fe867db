import os
import os.path as osp
from typing import List, Sequence

from mmengine.logging import print_log

from crosscl_mm.registry import DATASETS
from .image_folder import IMAGE_EXTENSIONS, UnlabeledImageFolder
from .proposal_records import proposal_record_path


@DATASETS.register_module()
class ProposalsFolder(UnlabeledImageFolder):
    """The images of :class:`UnlabeledImageFolder`, each with its object
    proposal record, for SoCo.

    Records live in ``proposals_root`` in a tree that mirrors ``data_root``
    (``DATA_ROOT/a/b.JPEG`` -> ``PROPOSALS/a/b.JPEG.json``, written by
    ``tools/misc/generate_proposals.py``; format in
    :mod:`crosscl_mm.datasets.proposal_records`). Every image must have one:
    the scan checks this once, up front, and names the images without a
    record, so a run does not stop hours in. Each item is
    ``dict(img_path=..., proposals_path=...)``; the pipeline reads the record
    with ``LoadProposals``.

    Args:
        data_root: folder of images, searched recursively.
        proposals_root: folder of proposal records.
        pipeline: transforms applied to each item.
        extensions: file suffixes counted as images.
        **kwargs: passed to :class:`mmengine.dataset.BaseDataset`.
    """

    def __init__(self, data_root: str, proposals_root: str, pipeline: Sequence = (),
                 extensions: Sequence[str] = IMAGE_EXTENSIONS, **kwargs) -> None:
        self.proposals_root = proposals_root
        super().__init__(data_root=data_root, pipeline=pipeline, extensions=extensions, **kwargs)

    def load_data_list(self) -> List[dict]:
        images = super().load_data_list()
        root = self.proposals_root
        if not osp.isdir(root):
            raise FileNotFoundError(
                f'train_dataloader.dataset.proposals_root={root!r} is not a folder; generate the '
                f'proposals with: python tools/misc/generate_proposals.py {self.data_root} {root}')
        records = set()
        for folder, _, files in os.walk(root, followlinks=True):
            records.update(osp.normpath(osp.join(folder, name))
                           for name in files if name.endswith('.json'))
        items, missing = [], []
        for item in images:
            path = proposal_record_path(root, self.data_root, item['img_path'])
            (items if osp.normpath(path) in records else missing).append(
                dict(item, proposals_path=path))
        if missing:
            shown = ', '.join(item['img_path'] for item in missing[:3])
            raise FileNotFoundError(
                f'{len(missing)} of {len(images)} images under {self.data_root} have no proposal '
                f'record in {root} (e.g. {shown}); run: python tools/misc/generate_proposals.py '
                f'{self.data_root} {root}')
        print_log(f'ProposalsFolder: every image has its proposal record in {root}',
                  logger='current')
        return items
