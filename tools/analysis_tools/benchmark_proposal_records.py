"""Proposal records, per image file against packed: packing rate, dataset
start-up and per-item read cost on synthetic records.

    python tools/analysis_tools/benchmark_proposal_records.py [--records 100000]
        [--boxes 31] [--work-dir DIR] [--keep]

Writes ``--records`` empty ``.jpg`` files in folders of 1,000 (the dataset
only scans names here) and, for each, a record of ``--boxes`` random boxes
in a 500x375 image (ImageNet's mean is about 31 boxes after SoCo's filter),
then measures in this order, on a warm page cache, each as wall and CPU
seconds of this process (the CPU time is the steadier on a shared machine):

0. the scan of the image folder alone (common to both forms);
1. ``ProposalsFolder`` start-up on the per-image records (scan + walk);
2. the per-item cost of ``get_data_info`` + ``LoadProposals`` (random items);
3. ``generate_proposals.py DATA OUT --pack`` (records/s, as the tool says);
4. start-up and per-item cost again, now on the packed form.

Everything it wrote is removed at the end unless ``--keep``.
"""
import argparse
import json
import os
import os.path as osp
import resource
import shutil
import sys
import tempfile
import time

import numpy as np

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
WIDTH, HEIGHT = 500, 375


def write_synthetic(root: str, records: int, boxes: int, seed: int = 0):
    """Empty images under ``root/data`` and their records under
    ``root/proposals``, in the tool's exact JSON (written plainly, without
    the tool's fsync per file: setup time is not what is measured)."""
    rng = np.random.default_rng(seed)
    data, out = osp.join(root, 'data'), osp.join(root, 'proposals')
    for i in range(records):
        folder = f'n{i // 1000:08d}'
        if i % 1000 == 0:
            os.makedirs(osp.join(data, folder))
            os.makedirs(osp.join(out, folder))
        name = f'{folder}/{folder}_{i % 1000}.JPEG'
        open(osp.join(data, name), 'wb').close()
        left = rng.integers(0, WIDTH - 32, boxes)
        top = rng.integers(0, HEIGHT - 32, boxes)
        w = rng.integers(32, WIDTH - left + 1)
        h = rng.integers(32, HEIGHT - top + 1)
        record = dict(size=[WIDTH, HEIGHT], boxes=np.stack([left, top, w, h], 1).tolist())
        with open(osp.join(out, name + '.json'), 'w') as f:
            f.write(json.dumps(record, separators=(',', ':')))
    return data, out


class Timer:
    """Wall and CPU seconds of a ``with`` block."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu

    def __str__(self):
        return f'{self.wall:.2f} s ({self.cpu:.2f} s CPU)'


def per_item_cost(dataset, items: int, seed: int = 1) -> Timer:
    """``get_data_info`` + ``LoadProposals`` of random items, per item."""
    from crosscl_mm.datasets.transforms.soco_views import LoadProposals
    load = LoadProposals()
    img = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    order = np.random.default_rng(seed).permutation(len(dataset))[:items]
    with Timer() as timer:
        for i in order:
            out = load(dict(dataset.get_data_info(int(i)), img=img))
            assert out['proposals'].shape[1] == 4
    timer.wall, timer.cpu = timer.wall / len(order), timer.cpu / len(order)
    return timer


def per_item(timer: Timer) -> str:
    return f'{timer.wall * 1e6:.0f} us ({timer.cpu * 1e6:.0f} us CPU)'


def start_up(data: str, out: str):
    from crosscl_mm.datasets import ProposalsFolder
    with Timer() as timer:
        dataset = ProposalsFolder(data_root=data, proposals_root=out)
    return dataset, timer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--records', type=int, default=100_000)
    parser.add_argument('--boxes', type=int, default=31)
    parser.add_argument('--items', type=int, default=5000, help='items timed per form')
    parser.add_argument('--work-dir', help='where to write (default: a new temporary folder)')
    parser.add_argument('--keep', action='store_true', help='leave the files there')
    args = parser.parse_args()
    sys.path.insert(0, osp.join(REPO, 'tools', 'misc'))
    import generate_proposals

    root = args.work_dir or tempfile.mkdtemp(prefix='proposal-records-')
    try:
        t = time.perf_counter()
        data, out = write_synthetic(root, args.records, args.boxes)
        print(f'wrote {args.records} images and records ({args.boxes} boxes each) in '
              f'{time.perf_counter() - t:.1f} s under {root}')
        per_file_bytes = sum(osp.getsize(osp.join(d, f)) for d, _, fs in os.walk(out)
                             for f in fs)

        from crosscl_mm.datasets.image_folder import scan_image_folder
        with Timer() as scan:
            scan_image_folder(data)
        print(f'scan of the {args.records} images alone: {scan}')
        dataset, seconds = start_up(data, out)
        cost = per_item_cost(dataset, args.items)
        print(f'per-image files: start-up {seconds}, per item {per_item(cost)}, '
              f'{per_file_bytes / 1e6:.1f} MB in {args.records} files')
        del dataset

        with Timer() as packing:
            code = generate_proposals.main([data, out, '--pack'])
        assert code == 0
        print(f'--pack: {packing} with the scan of DATA_ROOT: '
              f'{args.records / packing.wall:.0f} records/s '
              f'({args.records / packing.cpu:.0f} per CPU second)')
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        dataset, seconds = start_up(data, out)
        cost = per_item_cost(dataset, args.items)
        packed_bytes = sum(osp.getsize(osp.join(out, f)) for f in os.listdir(out)
                           if f.endswith(('.npz', 'index.json')))
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - maxrss
        arrays = sum(a.nbytes for a in (dataset.packed.sizes, dataset.packed.offsets,
                                        dataset.packed.boxes, dataset.packed.shard_of_row))
        print(f'packed: start-up {seconds}, per item {per_item(cost)}, '
              f'{packed_bytes / 1e6:.1f} MB in 2 files; arrays in memory {arrays / 1e6:.1f} MB '
              f'(peak RSS grew {grown / 1e3:.0f} MB)')
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
