"""Compute SoCo's selective-search proposals for every image of a folder.

    python tools/misc/generate_proposals.py DATA_ROOT OUT_DIR [--workers N] [--verify]

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

Exit codes: 0 done (broken images allowed), 1 some images failed for another
reason (listed) or a worker process died, 2 bad arguments (no DATA_ROOT, no
images), 130 interrupted.
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
from typing import Iterator, List, Optional, Set, Tuple

from crosscl_mm.datasets.image_folder import scan_image_folder
from crosscl_mm.datasets.proposal_records import (ProposalRecordError, proposal_record_path,
                                                  read_proposal_record, write_proposal_record)
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


def pending_images(images: List[str], data_root: str, out_dir: str, verify: bool = False
                   ) -> Tuple[List[Tuple[str, str]], int, int]:
    """Split the images into those to compute and those already done.

    Returns ``(tasks, done, invalid)``: ``(img_path, record_path)`` of each
    image without a record, the number already done, and how many existing
    records were unreadable (only looked for with ``verify``; recomputed).
    """
    records, removed = existing_records(out_dir)
    if removed:
        print(f'removed {removed} partial records left by an interrupted run', file=sys.stderr)
    tasks, done, invalid = [], 0, 0
    for img_path in images:
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
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f'--workers must be >= 1, got {args.workers}')
    try:
        images, ignored = scan_image_folder(args.data_root, name='DATA_ROOT')
    except FileNotFoundError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    tasks, done, invalid = pending_images(images, args.data_root, args.out_dir, args.verify)
    others = f'{ignored} other file' + ('' if ignored == 1 else 's')
    print(f'{len(images)} images under {args.data_root} ({others} ignored): '
          f'{done} already have a record in {args.out_dir}, {len(tasks)} to compute '
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
