"""SoCo's proposals across machines: tools/misc/generate_proposals.py --shard
I/N in two processes side by side against one unsharded run, the packed form
(--pack) against the per-image records, and ProposalsFolder reading either
(items, errors, a short training run)."""
import glob
import hashlib
import json
import os
import os.path as osp
import multiprocessing
import shutil
import sys

import numpy as np
import pytest

from conftest import python_cmd, run
from test_proposals import TOOL, photo_folder, run_tool, summary_counts

PHOTOS = ('astronaut.png', 'chelsea.png', 'coffee.png', 'rocket.jpg', 'motorcycle_left.png',
          'retina.jpg')


def reference_shard(rel_path, num_shards):
    """The documented assignment: BLAKE2b-64 of the path under the data root,
    big-endian, modulo the number of shards."""
    digest = hashlib.blake2b(rel_path.encode('utf-8'), digest_size=8).digest()
    return int.from_bytes(digest, 'big') % num_shards


def json_records(root):
    """{path under root: file bytes} of every per-image record."""
    return {osp.relpath(p, root): open(p, 'rb').read()
            for p in glob.glob(osp.join(root, '**', '*.json'), recursive=True)
            if osp.basename(p) != 'index.json'}


def tool_in_child(log, *args):
    """generate_proposals.main(args) in a forked child, its output to ``log``."""
    sys.path.insert(0, osp.dirname(TOOL))
    import generate_proposals
    with open(log, 'w') as f:
        sys.stdout = sys.stderr = f
        code = generate_proposals.main([str(a) for a in args])
        f.flush()
    os._exit(code)


def test_two_shards_side_by_side_equal_one_run_then_pack(tmp_path, capsys):
    from crosscl_mm.datasets.proposal_records import PackedProposals
    data, whole, split = tmp_path / 'data', tmp_path / 'whole', tmp_path / 'split'
    photos = photo_folder(str(data), PHOTOS, 96)
    rel = sorted(osp.relpath(p, data) for p in photos)
    expected_shard = {r: reference_shard(r, 2) for r in rel}
    assert 0 < sum(expected_shard.values()) < len(rel), 'both shards must get images'

    code, stdout, stderr = run_tool(capsys, data, whole, '--workers', 1)
    assert code == 0 and summary_counts(stdout) == (len(rel), 0, 0, 0), stderr

    # Two processes at once on one output folder, as two machines would (forked from
    # this one, which has imported crosscl_mm already: a fresh interpreter takes 5-20 s).
    fork = multiprocessing.get_context('fork')
    logs = [tmp_path / f'shard_{i}.log' for i in range(2)]
    procs = [fork.Process(target=tool_in_child, args=(logs[i], data, split, '--workers', '1',
                                                      '--shard', f'{i}/2')) for i in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(300)
    for i, (proc, log) in enumerate(zip(procs, logs)):
        out = log.read_text()
        assert proc.exitcode == 0, out
        count = sum(s == i for s in expected_shard.values())
        assert f', {count} in shard {i}/2:' in out, out
        assert summary_counts(out) == (count, 0, 0, 0), out
    assert json_records(split) == json_records(whole)  # byte for byte, no more, no less

    # Rerun of shard 0: nothing to do, nothing rewritten.
    mtimes = {p: os.stat(p).st_mtime_ns for p in split.rglob('*.json')}
    code, stdout, _ = run_tool(capsys, data, split, '--shard', '0/2', '--workers', 1)
    zero = sum(s == 0 for s in expected_shard.values())
    assert code == 0 and summary_counts(stdout) == (0, zero, 0, 0)
    assert {p: os.stat(p).st_mtime_ns for p in split.rglob('*.json')} == mtimes

    # Pack each shard where it was computed, then the index; and the whole run as one shard.
    per_image = {r: json.loads(b) for r, b in json_records(whole).items()}
    for i in range(2):
        code, stdout, stderr = run_tool(capsys, data, split, '--pack', '--shard', f'{i}/2',
                                        '--remove-records')
        assert code == 0, stderr
    assert not json_records(split)  # the per-image records are gone
    code, stdout, stderr = run_tool(capsys, data, split, '--pack', '--remove-records')
    assert code == 0, stderr
    assert '2 shards, 6 records' in stdout
    assert sorted(os.listdir(split)) == ['index.json', 'proposals-00000-of-00002.npz',
                                         'proposals-00001-of-00002.npz']  # no empty folder
    code, stdout, stderr = run_tool(capsys, data, whole, '--pack')
    assert code == 0 and osp.exists(whole / 'proposals-00000-of-00001.npz'), stderr
    for root in (split, whole):
        packed = PackedProposals(str(root))
        assert sorted(packed.keys) == rel
        for key in rel:
            shard_file, size, boxes = packed.record(packed.rows[key])
            record = per_image[key + '.json']
            assert list(size) == record['size']
            assert boxes.dtype == np.int64 and boxes.tolist() == record['boxes']
            if root == split:
                assert shard_file.endswith(f'proposals-0000{expected_shard[key]}-of-00002.npz')

    # Packed records count as done: a rerun computes nothing.
    code, stdout, _ = run_tool(capsys, data, split, '--workers', 1)
    assert code == 0 and summary_counts(stdout) == (0, len(rel), 0, 0)
    assert not json_records(split)


def build_dataset(data_root, proposals_root):
    from crosscl_mm.datasets import ProposalsFolder
    return ProposalsFolder(data_root=data_root, proposals_root=proposals_root,
                           pipeline=[dict(type='LoadImageRGB'), dict(type='LoadProposals')])


def test_dataset_reads_the_packed_form_as_the_records(photo_dir, tmp_path, capsys):
    from crosscl_mm.datasets.proposal_records import ProposalRecordError
    from test_soco_pipeline import write_records
    files, packed = str(tmp_path / 'files'), str(tmp_path / 'packed')
    rng = np.random.default_rng(0)
    write_records(photo_dir, files, boxes=rng.integers(0, 40, (7, 4)) + [0, 0, 1, 1])
    shutil.copytree(files, packed)
    code, _, stderr = run_tool(capsys, photo_dir, packed, '--pack', '--remove-records')
    assert code == 0, stderr
    by_file, by_pack = build_dataset(photo_dir, files), build_dataset(photo_dir, packed)
    assert len(by_pack) == len(by_file) == 8
    for i in range(len(by_file)):
        a, b = by_file[i], by_pack[i]
        assert a['img_path'] == b['img_path']
        assert b['proposals_path'] == osp.join(packed, 'proposals-00000-of-00001.npz')
        np.testing.assert_array_equal(a['img'], b['img'])
        assert a['proposals'].dtype == b['proposals'].dtype == np.float64
        np.testing.assert_array_equal(a['proposals'], b['proposals'])

    index = osp.join(packed, 'index.json')
    shard = osp.join(packed, 'proposals-00000-of-00001.npz')
    saved = open(index, 'rb').read(), open(shard, 'rb').read()

    def fails(match):
        with pytest.raises(ProposalRecordError, match=match):
            build_dataset(photo_dir, packed)
        open(index, 'wb').write(saved[0])
        open(shard, 'wb').write(saved[1])

    open(index, 'w').write('{"format": "crosscl_mm soco proposals, pa')  # cut short
    fails(f'{index}: not a packed proposal index')
    open(index, 'w').write(json.dumps(dict(json.loads(saved[0]), version=7)))
    fails(f'{index}: field "version" is 7')
    os.remove(index)
    fails(f'{index}: missing, but .* holds packed proposal shards; .* --pack')
    os.remove(shard)
    fails(f'{shard}: packed proposal shard named in {index} is missing')
    open(shard, 'wb').write(saved[1][:len(saved[1]) // 2])
    fails(f'{shard}: is not the shard that {index} names')
    damaged = bytearray(saved[1])
    damaged[len(damaged) // 2] ^= 0xFF  # same size, another content
    open(shard, 'wb').write(bytes(damaged))
    fails(f'{shard}: is not the shard that {index} names')
    build_dataset(photo_dir, packed)  # restored


def test_pack_refuses_a_damaged_shard_and_reports_missing_records(photo_dir, tmp_path, capsys):
    from test_soco_pipeline import write_records
    root = str(tmp_path / 'records')
    paths = write_records(photo_dir, root)
    os.remove(osp.join(root, osp.relpath(sorted(paths)[0], photo_dir) + '.json'))
    code, _, stderr = run_tool(capsys, photo_dir, root, '--pack')
    assert code == 1 and '1 images have no record, so the dataset will refuse' in stderr
    assert osp.basename(sorted(paths)[0]) in stderr
    shard = osp.join(root, 'proposals-00000-of-00001.npz')
    open(shard, 'wb').write(b'PK\x03\x04 not a zip')
    code, _, stderr = run_tool(capsys, photo_dir, root, '--pack')
    assert code == 1 and f'error: {shard}: not a packed proposal shard' in stderr


@pytest.mark.slow
def test_soco_trains_from_the_packed_form(photo_dir, tmp_path, capsys):
    from test_soco_pipeline import write_records
    from test_soco_training import CONFIG, LOSSES, tiny_options
    from crosscl_mm.utils.work_dir import read_scalars
    proposals = str(tmp_path / 'proposals')
    write_records(photo_dir, proposals)
    code, _, stderr = run_tool(capsys, photo_dir, proposals, '--pack', '--remove-records')
    assert code == 0, stderr
    work_dir = str(tmp_path / 'soco')
    run(python_cmd('tools/train.py', CONFIG, '--work-dir', work_dir,
                   *tiny_options(photo_dir, proposals, 'train_cfg.max_epochs=1',
                                 'default_hooks.checkpoint.interval=100')),
        env=dict(OMP_NUM_THREADS='1'), timeout=600)
    log = open(glob.glob(osp.join(work_dir, '*', '*.log'))[0]).read()
    assert 'ProposalsFolder: every image has its proposal record' in log
    assert '(8 packed, 0 per-image files)' in log
    scalars = [r for r in read_scalars(work_dir) if 'loss_v1_v2' in r]
    assert len(scalars) == 4  # 8 photos, batch 2, one epoch
    assert all(np.isfinite(r[name]) for r in scalars for name in LOSSES)
