import os
import os.path as osp
from typing import List, Optional, Sequence

from mmengine.logging import print_log

from crosscl_mm.registry import DATASETS
from .image_folder import IMAGE_EXTENSIONS, UnlabeledImageFolder
from .proposal_records import (PACKED_INDEX, PackedProposals, ProposalRecordError,
                               find_packed_shards, proposal_record_path, record_key)


@DATASETS.register_module()
class ProposalsFolder(UnlabeledImageFolder):
    """The images of :class:`UnlabeledImageFolder`, each with its object
    proposal record, for SoCo.

    Records live in ``proposals_root`` (written by
    ``tools/misc/generate_proposals.py``; format in
    :mod:`crosscl_mm.datasets.proposal_records`), in either form:

    - packed: ``index.json`` and the shard files it names, read into memory
      once (no file per image);
    - per image: a tree that mirrors ``data_root`` (``DATA_ROOT/a/b.JPEG`` ->
      ``PROPOSALS/a/b.JPEG.json``), read by the pipeline per item.

    A packed record is used where there is one; the per-image tree is only
    walked for the images the packed form lacks. Every image must have a
    record: the scan checks this once, up front, and names the images
    without one, so a run does not stop hours in. Each item is
    ``dict(img_path=..., proposals_path=...)``, plus for a packed record
    ``proposals_size`` and ``proposals_boxes`` (``proposals_path`` is then
    the shard file); the pipeline's ``LoadProposals`` reads either.

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
        self.packed: Optional[PackedProposals] = None
        super().__init__(data_root=data_root, pipeline=pipeline, extensions=extensions, **kwargs)

    def _generate_command(self) -> str:
        return f'python tools/misc/generate_proposals.py {self.data_root} {self.proposals_root}'

    def load_data_list(self) -> List[dict]:
        images = super().load_data_list()
        root = self.proposals_root
        if not osp.isdir(root):
            raise FileNotFoundError(
                f'train_dataloader.dataset.proposals_root={root!r} is not a folder; generate the '
                f'proposals with: {self._generate_command()}')
        if osp.exists(osp.join(root, PACKED_INDEX)):
            self.packed = PackedProposals(root)
        elif find_packed_shards(root):
            raise ProposalRecordError(
                f'{osp.join(root, PACKED_INDEX)}: missing, but {root} holds packed proposal '
                f'shards; write the index with: {self._generate_command()} --pack')
        rows = self.packed.rows if self.packed is not None else {}
        records = None  # the per-image records, found in one walk when needed
        items, missing = [], []
        for item in images:
            row = rows.get(record_key(self.data_root, item['img_path']))
            if row is not None:
                items.append(dict(item, proposals_row=row))
                continue
            if records is None:
                records = set()
                for folder, _, files in os.walk(root, followlinks=True):
                    records.update(osp.normpath(osp.join(folder, name))
                                   for name in files if name.endswith('.json'))
            path = proposal_record_path(root, self.data_root, item['img_path'])
            (items if osp.normpath(path) in records else missing).append(
                dict(item, proposals_path=path))
        if missing:
            shown = ', '.join(item['img_path'] for item in missing[:3])
            raise FileNotFoundError(
                f'{len(missing)} of {len(images)} images under {self.data_root} have no proposal '
                f'record in {root} (e.g. {shown}); run: {self._generate_command()}')
        packed = len(items) if records is None else sum('proposals_row' in i for i in items)
        print_log(f'ProposalsFolder: every image has its proposal record in {root} '
                  f'({packed} packed, {len(items) - packed} per-image files)', logger='current')
        return items

    def get_data_info(self, idx: int) -> dict:
        info = super().get_data_info(idx)
        row = info.pop('proposals_row', None)
        if row is not None:
            info['proposals_path'], info['proposals_size'], info['proposals_boxes'] = \
                self.packed.record(row)
        return info
