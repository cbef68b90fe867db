"""Object proposals on disk: one small JSON record per image.

SoCo pretrains on selective-search boxes computed offline. The records live
in a folder that mirrors the image folder: the image ``DATA_ROOT/a/b.JPEG``
has its record at ``PROPOSALS/a/b.JPEG.json``, so a dataset finds it from
the image path alone, a generator can skip images already done after a
kill, and nothing is ever unpickled. A record is::

    {"size": [W, H], "boxes": [[left, top, width, height], ...]}

with integer boxes in source-image pixels, in the official SoCo convention
(github hologerry/SoCo ``selective_search/selective_search.py:311-313``:
``width = max_x - min_x``, so the box covers ``left .. left + width - 1``
inclusively once converted with ``x2 = x1 + w - 1``,
``contrast/data/props_utils.py:36-43``). An empty list means no proposal
survived the filters.
"""
import json
import os.path as osp
from typing import Tuple

import numpy as np

from crosscl_mm.utils.files import save_atomically

__all__ = ['ProposalRecordError', 'proposal_record_path', 'read_proposal_record',
           'write_proposal_record']


class ProposalRecordError(ValueError):
    """A proposal record that is missing or malformed."""


def proposal_record_path(proposals_root: str, data_root: str, img_path: str) -> str:
    """Where the record of ``img_path`` (an image under ``data_root``) lives."""
    rel = osp.relpath(osp.abspath(img_path), osp.abspath(data_root))
    if rel.startswith('..'):
        raise ProposalRecordError(f'{img_path} is not under data_root {data_root}')
    return osp.join(proposals_root, rel + '.json')


def write_proposal_record(path: str, size: Tuple[int, int], boxes: np.ndarray) -> None:
    """Write the record of one image atomically.

    Args:
        size: ``(width, height)`` of the image.
        boxes: ``(N, 4)`` integer ``left, top, width, height``.
    """
    boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    record = dict(size=[int(size[0]), int(size[1])], boxes=boxes.tolist())
    text = json.dumps(record, separators=(',', ':'))
    save_atomically(path, lambda f: f.write(text.encode('utf-8')))


def read_proposal_record(path: str) -> Tuple[Tuple[int, int], np.ndarray]:
    """Read a record: ``((width, height), boxes)`` with ``boxes`` an
    ``(N, 4)`` int64 array of ``left, top, width, height``.

    Raises:
        ProposalRecordError: naming the file and the field that is wrong.
    """
    try:
        with open(path, encoding='utf-8') as f:
            record = json.load(f)
    except FileNotFoundError:
        raise ProposalRecordError(f'{path}: no proposal record (run tools/misc/'
                                  f'generate_proposals.py on the data root first)') from None
    except (OSError, ValueError) as exc:
        raise ProposalRecordError(f'{path}: not a proposal record ({exc})') from None
    if not isinstance(record, dict):
        raise ProposalRecordError(f'{path}: expected a JSON object, got {type(record).__name__}')
    size = record.get('size')
    if not (isinstance(size, list) and len(size) == 2
            and all(isinstance(v, int) and v > 0 for v in size)):
        raise ProposalRecordError(f'{path}: field "size" must be [width, height], got {size!r}')
    boxes = record.get('boxes')
    if not isinstance(boxes, list) or not all(
            isinstance(b, list) and len(b) == 4 and all(isinstance(v, int) for v in b)
            for b in boxes):
        raise ProposalRecordError(
            f'{path}: field "boxes" must be a list of [left, top, width, height] integers')
    arr = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    width, height = size
    bad = (arr[:, 0] < 0) | (arr[:, 1] < 0) | (arr[:, 2] <= 0) | (arr[:, 3] <= 0) | \
        (arr[:, 0] + arr[:, 2] > width) | (arr[:, 1] + arr[:, 3] > height)
    if bad.any():
        raise ProposalRecordError(
            f'{path}: field "boxes": box {int(np.flatnonzero(bad)[0])} '
            f'{arr[bad][0].tolist()} is empty or leaves the {width}x{height} image')
    return (width, height), arr

