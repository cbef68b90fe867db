"""Compute SoCo's selective-search proposals for every image of a folder.

    python tools/misc/generate_proposals.py DATA_ROOT OUT_DIR [--workers N] [--verify]
        [--shard I/N] [--pack [--remove-records]]

DATA_ROOT is scanned as the training dataset scans it (recursively, sorted,
the same image extensions) and each image is decoded as the dataset decodes
it (``LoadImageRGB``: RGB, EXIF orientation applied). For each image
``DATA_ROOT/a/b.JPEG`` one record ``OUT_DIR/a/b.JPEG.json`` = ``{"size": [W,
H], "boxes": [[left, top, width, height], ...]}`` is written atomically
(:mod:`crosscl_mm.datasets.proposal_records`): the official SoCo selective
search at full resolution, filtered by ``ratio3size0308`` with the official
fallbacks (:mod:`crosscl_mm.datasets.proposals`). An empty list means that
no box survived; the dataset then uses the whole image.

Images are processed in parallel over ``--workers`` processes with a progress
line and ETA on stderr. The tool can be killed at any time and rerun: images
whose record is already there are skipped (records are written atomically,
so one that exists is complete; ``--verify`` reads them all and recomputes
any that is not a valid record). Images that cannot be decoded are reported,
counted and left without a record; they do not stop the run.

``--shard I/N`` (``0 <= I < N``) computes only the images of shard ``I``:
an image's shard is a hash of its path under DATA_ROOT
(:func:`crosscl_mm.datasets.proposal_records.shard_of`), so N machines (or a
Slurm array) given I = 0 .. N-1 and the same OUT_DIR split the folder with
no overlap, and each can be rerun.

``--pack`` computes nothing: it converts the records of OUT_DIR into the
packed form, one ``proposals-IIIII-of-NNNNN.npz`` per shard (with
``--shard I/N``: that shard only) and, without ``--shard``, ``index.json``
over all shards (N: the shard files already in OUT_DIR, else 1), which the
dataset reads instead of one file per image. ``--remove-records`` then
deletes the per-image records that were packed (after reading the shard
back; their emptied folders go in the run without ``--shard``, as other
shards may still be writing into them). Images already packed count as done
for the computing runs.

Exit codes: 0 done (broken images allowed), 1 some images failed for another
reason (listed) or a worker process died, or (``--pack``) some images have no
record, 2 bad arguments (no DATA_ROOT, no images), 130 interrupted.
"""
import argparse
import ctypes
import itertools
import os
import os.path as osp
import signal
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Dict, Iterator, List, Optional, Set, Tuple

import numpy as np

from crosscl_mm.datasets.image_folder import scan_image_folder
from crosscl_mm.datasets.proposal_records import (PACKED_INDEX, ProposalRecordError,
                                                  find_packed_shards, packed_shard_name,
                                                  proposal_record_path, read_packed_shard,
                                                  read_proposal_record, record_key, shard_of,
                                                  write_packed_index, write_packed_shard,
                                                  write_proposal_record)
from crosscl_mm.datasets.proposals import soco_proposals
from crosscl_mm.datasets.transforms.loading import decode_rgb

# Outcomes of one image.
COMPUTED, BROKEN, FAILED = 'computed', 'broken', 'failed'


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent(parent: int) -> None:
    """Worker initializer: a worker gets SIGKILL when the tool dies, so that a
    killed run leaves no process behind (Linux ``prctl(PR_SET_PDEATHSIG)``;
    elsewhere workers finish their task and exit)."""
    try:
        ctypes.CDLL('libc.so.6', use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the tool died before prctl took effect
        os._exit(1)
    # Ctrl-C goes to the whole process group: the parent alone handles it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def process_image(task: Tuple[str, str]) -> Tuple[str, str, int, str]:
    """Compute and write the record of one image.

    Returns ``(outcome, img_path, number of boxes, message)``.
    """
    img_path, record_path = task
    try:
        img = decode_rgb(img_path)
    except Exception as exc:  # PIL raises many types for broken files
        return BROKEN, img_path, 0, f'{type(exc).__name__}: {exc}'
    try:
        boxes = soco_proposals(img)
        write_proposal_record(record_path, (img.shape[1], img.shape[0]), boxes)
    except Exception as exc:
        return FAILED, img_path, 0, f'{type(exc).__name__}: {exc}'
    return COMPUTED, img_path, len(boxes), ''


def existing_records(out_dir: str) -> Tuple[Set[str], int]:
    """The records already in ``out_dir`` (normalised paths), found in one
    walk, and the number of temporary files of interrupted writes it deleted
    (``save_atomically`` writes ``.NAME.json.XXXX.partial`` beside
    ``NAME.json``, then renames it, so a record that exists is complete)."""
    records, removed = set(), 0
    for folder, _, files in os.walk(out_dir):
        for name in files:
            if name.startswith('.') and name.endswith('.partial') and '.json.' in name:
                os.remove(osp.join(folder, name))
                removed += 1
            elif name.endswith('.json'):
                records.add(osp.normpath(osp.join(folder, name)))
    return records, removed


def packed_keys(out_dir: str) -> Set[str]:
    """The images with a record in the shard files of ``out_dir`` (a damaged
    shard file is reported and its images count as not done)."""
    keys: Set[str] = set()
    for shards in find_packed_shards(out_dir).values():
        for path in shards.values():
            try:
                keys.update(read_packed_shard(path).keys)
            except ProposalRecordError as exc:
                print(f'ignoring a packed shard: {exc}', file=sys.stderr)
    return keys


def pending_images(images: List[str], data_root: str, out_dir: str, verify: bool = False
                   ) -> Tuple[List[Tuple[str, str]], int, int]:
    """Split the images into those to compute and those already done (a
    per-image record or a packed one).

    Returns ``(tasks, done, invalid)``: ``(img_path, record_path)`` of each
    image without a record, the number already done, and how many existing
    records were unreadable (only looked for with ``verify``; recomputed).
    """
    records, removed = existing_records(out_dir)
    if removed:
        print(f'removed {removed} partial records left by an interrupted run', file=sys.stderr)
    packed = packed_keys(out_dir)  # checked when read: valid
    tasks, done, invalid = [], 0, 0
    for img_path in images:
        if packed and record_key(data_root, img_path) in packed:
            done += 1
            continue
        record = proposal_record_path(out_dir, data_root, img_path)
        if osp.normpath(record) in records:
            try:
                if verify:
                    read_proposal_record(record)
                done += 1
                continue
            except ProposalRecordError as exc:
                print(f'recomputing {record}: {exc}', file=sys.stderr)
                invalid += 1
        tasks.append((img_path, record))
    return tasks, done, invalid


def run_in_processes(tasks: List[Tuple[str, str]], workers: int, in_flight: dict
                     ) -> Iterator[Tuple[str, str, int, str]]:
    """:func:`process_image` of each task in ``workers`` processes, results
    in completion order; ``in_flight`` maps the running futures to their
    tasks (to name them if a worker dies).

    A ``ProcessPoolExecutor`` rather than ``multiprocessing.Pool``: when a
    worker is killed (e.g. out of memory) the executor breaks with
    ``BrokenProcessPool`` where a Pool waits forever for the lost task
    (bpo-22393). At most ``2 * workers`` tasks are queued, so a million
    images do not make a million futures.
    """
    pool = ProcessPoolExecutor(workers, initializer=_die_with_parent, initargs=(os.getpid(),))
    queue = iter(tasks)
    try:
        for task in itertools.islice(queue, 2 * workers):
            in_flight[pool.submit(process_image, task)] = task
        while in_flight:
            finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in finished:
                result = future.result()
                del in_flight[future]
                for task in itertools.islice(queue, 1):
                    in_flight[pool.submit(process_image, task)] = task
                yield result
    finally:
        pool.shutdown(wait=not in_flight, cancel_futures=True)


def pack_shard(images: List[str], data_root: str, out_dir: str, shard: int, num_shards: int,
               records: Set[str]) -> Tuple[List[str], List[str], List[str]]:
    """Write the shard file of the images of shard ``shard`` (``images`` are
    those of the shard), from their per-image records (in ``records``) or,
    for those without one, the shard file already there.

    Returns ``(packed, record files packed, images without a record)``. The
    file is written atomically and read back: it holds exactly the values of
    the records, in the order of ``images``. A shard whose file exists and
    none of whose images has a per-image record is only checked.
    """
    path = osp.join(out_dir, packed_shard_name(shard, num_shards))
    record_paths = [proposal_record_path(out_dir, data_root, img) for img in images]
    has_record = [osp.normpath(p) in records for p in record_paths]
    old: Dict[str, tuple] = {}
    if osp.exists(path):
        previous = read_packed_shard(path)  # a damaged file stops the packing, naming it
        if not any(has_record):
            keys = set(previous.keys)
            return ([img for img in images if record_key(data_root, img) in keys], [],
                    [img for img in images if record_key(data_root, img) not in keys])
        old = {key: previous.record(i) for i, key in enumerate(previous.keys)}
    keys, sizes, boxes, used, missing = [], [], [], [], []
    packed = []
    for img, record, present in zip(images, record_paths, has_record):
        key = record_key(data_root, img)
        if present:
            size, box = read_proposal_record(record)
            used.append(record)
        elif key in old:
            size, box = old[key]
        else:
            missing.append(img)
            continue
        keys.append(key)
        sizes.append(size)
        boxes.append(box)
        packed.append(img)
    write_packed_shard(path, keys, sizes, boxes)
    back = read_packed_shard(path)
    if back.keys != keys or not all(
            back.record(i)[0] == sizes[i] and np.array_equal(back.record(i)[1], boxes[i])
            for i in range(len(keys))):
        raise ProposalRecordError(f'{path}: reads back other values than were written')
    return packed, used, missing


def remove_empty_folders(out_dir: str) -> None:
    """Delete the empty folders under ``out_dir`` (not ``out_dir``)."""
    for folder, _, _ in os.walk(out_dir, topdown=False):
        if osp.normpath(folder) != osp.normpath(out_dir) and not os.listdir(folder):
            os.rmdir(folder)


def pack(images: List[str], data_root: str, out_dir: str, shard: Optional[Tuple[int, int]],
         remove: bool) -> int:
    """``--pack``: the shard files (and, without ``--shard``, the index)."""
    if shard is None:
        counts = sorted(find_packed_shards(out_dir))
        if len(counts) > 1:
            print(f'error: {out_dir} holds shard files for {counts} shards; keep one set',
                  file=sys.stderr)
            return 2
        num_shards = counts[0] if counts else 1
        shards = list(range(num_shards))
    else:
        shards, num_shards = [shard[0]], shard[1]
    records, _ = existing_records(out_dir)
    start = time.monotonic()
    by_shard: Dict[int, List[str]] = {s: [] for s in shards}
    for img in images:
        s = shard_of(record_key(data_root, img), num_shards)
        if s in by_shard:
            by_shard[s].append(img)
    packed, used, missing = 0, [], []
    try:
        for s in shards:
            done, shard_used, shard_missing = pack_shard(
                by_shard[s], data_root, out_dir, s, num_shards, records)
            packed += len(done)
            used += shard_used
            missing += shard_missing
            print(f'{packed_shard_name(s, num_shards)}: {len(done)} records '
                  f'({len(shard_used)} from per-image files)', flush=True)
        if shard is None:
            index = write_packed_index(out_dir, num_shards)
            print(f'{osp.join(out_dir, PACKED_INDEX)}: {num_shards} shards, '
                  f'{index["images"]} records', flush=True)
    except ProposalRecordError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    seconds = time.monotonic() - start
    if remove:
        for path in used:
            os.remove(path)
        if shard is None:  # with --shard, other shards may be writing into these folders
            remove_empty_folders(out_dir)
    print(f'packed {packed} records in {seconds:.1f} s ({packed / max(seconds, 1e-9):.0f} '
          f'records/s)' + (f'; removed {len(used)} per-image records' if remove else ''))
    if missing:
        print(f'{len(missing)} images have no record, so the dataset will refuse this folder '
              f'(compute them, or remove broken images): ' + ', '.join(missing[:5])
              + (' ...' if len(missing) > 5 else ''), file=sys.stderr)
        return 1
    return 0


def parse_shard(text: str) -> Tuple[int, int]:
    """``'I/N'`` -> ``(I, N)`` with ``0 <= I < N``."""
    try:
        index, total = (int(v) for v in text.split('/'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'--shard takes I/N, got {text!r}') from None
    if not 0 <= index < total:
        raise argparse.ArgumentTypeError(f'--shard I/N needs 0 <= I < N, got {text!r}')
    return index, total


class ProgressLine:
    """``[1234/5000]  25%  3.10 img/s  ETA 0:20:15`` on stderr: redrawn in
    place on a terminal, else one line every ``every`` seconds."""

    def __init__(self, total: int, every: float = 30.0) -> None:
        self.total, self.every = total, every
        self.count, self.start, self.shown = 0, time.monotonic(), 0.0
        self.tty = sys.stderr.isatty()

    def message(self, text: str) -> None:
        """A line of its own, not mixed into the progress line."""
        print(('\n' if self.tty and self.count else '') + text, file=sys.stderr, flush=True)

    def update(self) -> None:
        self.count += 1
        now = time.monotonic()
        last = self.count == self.total
        if not (self.tty or last or now - self.shown >= self.every):
            return
        self.shown = now
        rate = self.count / max(now - self.start, 1e-9)
        minutes, seconds = divmod(round((self.total - self.count) / rate), 60)
        eta = f'{minutes // 60}:{minutes % 60:02d}:{seconds:02d}'
        width = len(str(self.total))
        line = (f'[{self.count:{width}d}/{self.total}] {100 * self.count / self.total:3.0f}%  '
                f'{rate:.2f} img/s  ETA {eta}')
        print(('\r' + line) if self.tty else line, end='\n' if last or not self.tty else '',
              file=sys.stderr, flush=True)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('data_root', help='folder of images, searched recursively')
    parser.add_argument('out_dir', help='folder of the records (mirrors DATA_ROOT)')
    parser.add_argument('--workers', type=int, default=len(os.sched_getaffinity(0)),
                        help='processes (default: the CPUs this process may use)')
    parser.add_argument('--verify', action='store_true',
                        help='read every existing record and recompute those that are not '
                             'valid (by default a record that exists is complete: writes '
                             'are atomic)')
    parser.add_argument('--shard', type=parse_shard, metavar='I/N',
                        help='only the images of shard I of N (0 <= I < N; by a hash of the '
                             'path, the same on every machine)')
    parser.add_argument('--pack', action='store_true',
                        help='compute nothing: write the packed form of the records (the '
                             'shard files; without --shard also index.json)')
    parser.add_argument('--remove-records', action='store_true',
                        help='with --pack: delete the per-image records once packed')
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f'--workers must be >= 1, got {args.workers}')
    if args.remove_records and not args.pack:
        parser.error('--remove-records goes with --pack')
    try:
        images, ignored = scan_image_folder(args.data_root, name='DATA_ROOT')
    except FileNotFoundError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    if args.pack:
        return pack(images, args.data_root, args.out_dir, args.shard, args.remove_records)
    others = f'{ignored} other file' + ('' if ignored == 1 else 's')
    where = f'{len(images)} images under {args.data_root} ({others} ignored)'
    if args.shard is not None:
        shard, num_shards = args.shard
        images = [img for img in images
                  if shard_of(record_key(args.data_root, img), num_shards) == shard]
        where += f', {len(images)} in shard {shard}/{num_shards}'
    tasks, done, invalid = pending_images(images, args.data_root, args.out_dir, args.verify)
    print(f'{where}: {done} already have a record in {args.out_dir}, {len(tasks)} to compute '
          f'with {args.workers} workers', flush=True)

    outcomes = {COMPUTED: 0, BROKEN: 0, FAILED: 0}
    boxes = empty = 0
    failures = []
    start = time.monotonic()
    if tasks:
        progress = ProgressLine(len(tasks))
        in_flight: dict = {}
        try:
            for outcome, img_path, n, message in run_in_processes(
                    tasks, min(args.workers, len(tasks)), in_flight):
                outcomes[outcome] += 1
                if outcome == COMPUTED:
                    boxes += n
                    empty += n == 0
                else:
                    progress.message(f'{outcome} image, no record written: {img_path} '
                                     f'({message})')
                    if outcome == FAILED:
                        failures.append(f'{img_path}: {message}')
                progress.update()
        except BrokenProcessPool:
            running = ', '.join(img for img, _ in in_flight.values())
            print(f'\nerror: a worker process died (killed, out of memory?) while computing one '
                  f'of: {running}. {outcomes[COMPUTED]} records were written in this run; rerun '
                  f'the same command to continue (or with fewer --workers)', file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print(f'\ninterrupted: {outcomes[COMPUTED]} records written in this run; '
                  f'rerun the same command to continue', file=sys.stderr)
            return 130
    seconds = time.monotonic() - start

    computed = outcomes[COMPUTED]
    summary = (f'done: {computed} computed, {done} skipped (record already there), '
               f'{outcomes[BROKEN]} broken, {outcomes[FAILED]} failed')
    if invalid:
        summary += f', {invalid} unreadable records recomputed'
    summary += f' in {seconds:.1f} s'
    if computed:
        summary += (f' ({computed / seconds:.2f} images/s, {args.workers} workers); '
                    f'mean {boxes / computed:.1f} boxes per image, {empty} images with no box '
                    f'(the dataset uses the whole image)')
    print(summary)
    if failures:
        print(f'{len(failures)} images failed (rerun to retry them):\n  ' + '\n  '.join(failures),
              file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
