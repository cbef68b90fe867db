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

Packed form (for clusters, where a million small files are slow): the
records of a folder split into shards by :func:`shard_of`, one ``.npz`` per
shard (:func:`write_packed_shard`: numpy arrays only, read with
``allow_pickle=False``) and an ``index.json`` naming the shards with their
sizes and SHA-256 (:func:`write_packed_index`). :class:`PackedProposals`
reads them into memory for the dataset. The packed form holds exactly the
values of the per-image records.
"""
import hashlib
import io
import json
import os
import os.path as osp
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from crosscl_mm.utils.files import save_atomically

__all__ = ['ProposalRecordError', 'proposal_record_path', 'read_proposal_record',
           'write_proposal_record', 'record_key', 'shard_of', 'packed_shard_name',
           'find_packed_shards', 'write_packed_shard', 'read_packed_shard', 'PackedShard',
           'write_packed_index', 'PackedProposals', 'PACKED_INDEX']


class ProposalRecordError(ValueError):
    """A proposal record that is missing or malformed."""


def record_key(data_root: str, img_path: str) -> str:
    """The path of ``img_path`` under ``data_root``, with ``/`` separators:
    what names an image's record in both forms."""
    rel = osp.relpath(osp.abspath(img_path), osp.abspath(data_root))
    if rel.startswith('..'):
        raise ProposalRecordError(f'{img_path} is not under data_root {data_root}')
    return rel.replace(os.sep, '/')


def proposal_record_path(proposals_root: str, data_root: str, img_path: str) -> str:
    """Where the record of ``img_path`` (an image under ``data_root``) lives."""
    return osp.join(proposals_root, *record_key(data_root, img_path).split('/')) + '.json'


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



# --- Packed form ---------------------------------------------------------------------

PACKED_INDEX = 'index.json'
PACKED_FORMAT = 'crosscl_mm soco proposals, packed'
PACKED_VERSION = 1
_SHARD_NAME = re.compile(r'proposals-(\d{5})-of-(\d{5})\.npz')
# The arrays of a shard file: names joined by NUL (no file name holds one),
# per image (width, height) and the number of boxes, then every box in order.
_SHARD_ARRAYS = ('keys', 'sizes', 'counts', 'boxes')


def shard_of(key: str, num_shards: int) -> int:
    """The shard of an image: the first 8 bytes of the BLAKE2b digest of its
    :func:`record_key` (UTF-8), read big-endian, modulo ``num_shards``.

    Depends on the image's name only, not on its position in the folder or
    on the machine, so N machines scanning the same folder split it without
    overlap, and images added later do not move the others.
    """
    digest = hashlib.blake2b(key.encode('utf-8'), digest_size=8).digest()
    return int.from_bytes(digest, 'big') % num_shards


def packed_shard_name(shard: int, num_shards: int) -> str:
    """``proposals-00003-of-00016.npz``."""
    return f'proposals-{shard:05d}-of-{num_shards:05d}.npz'


def find_packed_shards(root: str) -> Dict[int, Dict[int, str]]:
    """The shard files in ``root``: ``{num_shards: {shard: path}}``."""
    found: Dict[int, Dict[int, str]] = {}
    if osp.isdir(root):
        for name in sorted(os.listdir(root)):
            match = _SHARD_NAME.fullmatch(name)
            if match:
                shard, total = int(match.group(1)), int(match.group(2))
                found.setdefault(total, {})[shard] = osp.join(root, name)
    return found


class PackedShard:
    """The records of one shard file: ``keys[i]`` has image size
    ``sizes[i]`` = (width, height) and boxes ``boxes[offsets[i]:offsets[i + 1]]``
    (``left, top, width, height``)."""

    def __init__(self, keys: List[str], sizes: np.ndarray, offsets: np.ndarray,
                 boxes: np.ndarray) -> None:
        self.keys, self.sizes, self.offsets, self.boxes = keys, sizes, offsets, boxes

    def __len__(self) -> int:
        return len(self.keys)

    def record(self, i: int) -> Tuple[Tuple[int, int], np.ndarray]:
        width, height = self.sizes[i]
        return (int(width), int(height)), self.boxes[self.offsets[i]:self.offsets[i + 1]]


def write_packed_shard(path: str, keys: Sequence[str], sizes: Sequence[Tuple[int, int]],
                       boxes: Sequence[np.ndarray]) -> None:
    """Write the records ``(keys[i], sizes[i], boxes[i])`` as one ``.npz``,
    atomically. Boxes are stored as uint16 when every value fits, else int32."""
    for key in keys:
        if '\0' in key:
            raise ProposalRecordError(f'{path}: an image name holds a NUL byte: {key!r}')
    counts = np.array([len(b) for b in boxes], dtype=np.int64)
    flat = (np.concatenate([np.asarray(b, np.int64).reshape(-1, 4) for b in boxes])
            if len(boxes) else np.zeros((0, 4), np.int64))
    dtype = np.uint16 if flat.size == 0 or flat.max() <= np.iinfo(np.uint16).max else np.int32
    arrays = dict(keys=np.frombuffer('\0'.join(keys).encode('utf-8'), dtype=np.uint8),
                  sizes=np.asarray(sizes, dtype=np.int32).reshape(-1, 2),
                  counts=counts.astype(np.int32), boxes=flat.astype(dtype))
    save_atomically(path, lambda f: np.savez(f, **arrays))


def read_packed_shard(path: str, data: Optional[bytes] = None) -> PackedShard:
    """Read and check a shard file (or its bytes ``data``).

    Raises:
        ProposalRecordError: naming the file and the field that is wrong.
    """
    try:
        if data is None:
            with open(path, 'rb') as f:
                data = f.read()
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            missing = [name for name in _SHARD_ARRAYS if name not in npz.files]
            if missing:
                raise ProposalRecordError(f'{path}: not a packed proposal shard (no array '
                                          f'{", ".join(missing)})')
            arrays = {name: npz[name] for name in _SHARD_ARRAYS}
    except FileNotFoundError:
        raise ProposalRecordError(f'{path}: packed proposal shard missing') from None
    except ProposalRecordError:
        raise
    except Exception as exc:  # zipfile, numpy and decoding errors of a damaged file
        raise ProposalRecordError(f'{path}: not a packed proposal shard '
                                  f'({type(exc).__name__}: {exc})') from None
    raw, sizes, counts, boxes = (arrays[name] for name in _SHARD_ARRAYS)
    try:
        keys = raw.tobytes().decode('utf-8').split('\0') if raw.size else []
    except UnicodeDecodeError as exc:
        raise ProposalRecordError(f'{path}: field "keys" is not UTF-8 ({exc})') from None
    n = len(keys)
    if not (sizes.dtype.kind == 'i' and sizes.shape == (n, 2) and (sizes > 0).all()):
        raise ProposalRecordError(f'{path}: field "sizes" must be {n} positive (width, height), '
                                  f'got {sizes.dtype} {sizes.shape}')
    if not (counts.dtype.kind == 'i' and counts.shape == (n,) and (counts >= 0).all()):
        raise ProposalRecordError(f'{path}: field "counts" must be {n} box counts, '
                                  f'got {counts.dtype} {counts.shape}')
    offsets = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
    if not (boxes.dtype.kind in 'iu' and boxes.shape == (offsets[-1], 4)):
        raise ProposalRecordError(f'{path}: field "boxes" must be ({offsets[-1]}, 4) integers, '
                                  f'got {boxes.dtype} {boxes.shape}')
    image_of_box = np.repeat(np.arange(n), counts)
    b = boxes.astype(np.int64)
    width, height = sizes[image_of_box, 0], sizes[image_of_box, 1]
    bad = (b[:, 0] < 0) | (b[:, 1] < 0) | (b[:, 2] <= 0) | (b[:, 3] <= 0) | \
        (b[:, 0] + b[:, 2] > width) | (b[:, 1] + b[:, 3] > height)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        image = int(image_of_box[first])
        raise ProposalRecordError(
            f'{path}: field "boxes": box {first - int(offsets[image])} {b[first].tolist()} of '
            f'{keys[image]} is empty or leaves the {sizes[image, 0]}x{sizes[image, 1]} image')
    return PackedShard(keys, sizes, offsets, boxes)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_packed_index(root: str, num_shards: int) -> dict:
    """Write ``root/index.json`` naming the ``num_shards`` shard files of
    ``root`` (all must exist), with their number of images and boxes, byte
    size and SHA-256, atomically. Returns the index."""
    shards = []
    for shard in range(num_shards):
        name = packed_shard_name(shard, num_shards)
        with open(osp.join(root, name), 'rb') as f:
            data = f.read()
        records = read_packed_shard(osp.join(root, name), data)
        shards.append(dict(file=name, images=len(records), boxes=int(records.offsets[-1]),
                           bytes=len(data), sha256=_sha256(data)))
    index = dict(format=PACKED_FORMAT, version=PACKED_VERSION, num_shards=num_shards,
                 shard_of='blake2b(path under data_root, 8 bytes, big-endian) % num_shards',
                 images=sum(s['images'] for s in shards), shards=shards)
    text = json.dumps(index, indent=1)
    save_atomically(osp.join(root, PACKED_INDEX), lambda f: f.write(text.encode('utf-8')))
    return index


def _read_packed_index(path: str) -> dict:
    try:
        with open(path, encoding='utf-8') as f:
            index = json.load(f)
    except (OSError, ValueError) as exc:
        raise ProposalRecordError(f'{path}: not a packed proposal index ({exc})') from None
    if not isinstance(index, dict) or index.get('format') != PACKED_FORMAT:
        raise ProposalRecordError(f'{path}: not a packed proposal index (field "format" must be '
                                  f'{PACKED_FORMAT!r})')
    if index.get('version') != PACKED_VERSION:
        raise ProposalRecordError(f'{path}: field "version" is {index.get("version")!r}; this '
                                  f'crosscl_mm reads version {PACKED_VERSION}')
    shards = index.get('shards')
    if not (isinstance(shards, list) and len(shards) == index.get('num_shards') and all(
            isinstance(s, dict) and isinstance(s.get('file'), str)
            and osp.basename(s['file']) == s['file'] and isinstance(s.get('images'), int)
            and isinstance(s.get('bytes'), int) and isinstance(s.get('sha256'), str)
            for s in shards)):
        raise ProposalRecordError(f'{path}: field "shards" must list "num_shards" entries with '
                                  f'"file", "images", "bytes" and "sha256"')
    return index


class PackedProposals:
    """The packed records of a folder, in memory: read from ``root/index.json``
    and the shard files it names, each checked against its size and SHA-256
    in the index and for valid records (:func:`read_packed_shard`).

    Attributes:
        rows: ``{record key: row}`` over all shards.
        files: the shard file of each row is ``files[shard_of_row[row]]``.
    """

    def __init__(self, root: str) -> None:
        index_path = osp.join(root, PACKED_INDEX)
        index = _read_packed_index(index_path)
        self.index_path, self.files = index_path, []
        keys: List[str] = []
        sizes, counts, boxes, shard_of_row = [], [], [], []
        for shard, entry in enumerate(index['shards']):
            path = osp.join(root, entry['file'])
            try:
                with open(path, 'rb') as f:
                    data = f.read()
            except FileNotFoundError:
                raise ProposalRecordError(f'{path}: packed proposal shard named in {index_path} '
                                          f'is missing') from None
            if len(data) != entry['bytes'] or _sha256(data) != entry['sha256']:
                raise ProposalRecordError(
                    f'{path}: is not the shard that {index_path} names ({len(data)} bytes, '
                    f'the index says {entry["bytes"]}; or another SHA-256); rerun '
                    f'generate_proposals.py --pack')
            records = read_packed_shard(path, data)
            if len(records) != entry['images']:
                raise ProposalRecordError(f'{path}: {len(records)} records, {index_path} says '
                                          f'{entry["images"]}')
            self.files.append(path)
            keys += records.keys
            sizes.append(records.sizes)
            counts.append(np.diff(records.offsets))
            boxes.append(records.boxes)
            shard_of_row.append(np.full(len(records), shard, dtype=np.int32))
        self.rows = {key: row for row, key in enumerate(keys)}
        if len(self.rows) != len(keys):
            seen = set()
            twice = next(k for k in keys if k in seen or seen.add(k))
            raise ProposalRecordError(f'{index_path}: the record of {twice} is in two shards')
        self.keys = keys
        self.sizes = np.concatenate(sizes) if sizes else np.zeros((0, 2), np.int32)
        self.offsets = np.concatenate([[0], np.cumsum(np.concatenate(counts) if counts else [],
                                                      dtype=np.int64)])
        self.boxes = (np.concatenate(boxes) if boxes else np.zeros((0, 4), np.uint16))
        self.shard_of_row = (np.concatenate(shard_of_row) if shard_of_row
                             else np.zeros(0, np.int32))

    def __len__(self) -> int:
        return len(self.keys)

    def record(self, row: int) -> Tuple[str, Tuple[int, int], np.ndarray]:
        """``(shard file, (width, height), boxes)`` of a row; boxes as an
        ``(N, 4)`` int64 ``left, top, width, height``, as
        :func:`read_proposal_record` returns them."""
        width, height = self.sizes[row]
        boxes = self.boxes[self.offsets[row]:self.offsets[row + 1]].astype(np.int64)
        return self.files[self.shard_of_row[row]], (int(width), int(height)), boxes
