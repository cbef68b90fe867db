"""Bad images, non-finite losses, and kill-and-resume."""
import glob
import math
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

import crosscl_mm  # noqa: F401
from crosscl_mm.converters import load_checkpoint_safely
from crosscl_mm.datasets import UnlabeledImageFolder
from crosscl_mm.datasets.transforms.loading import LoadImageRGB, decode_rgb

from conftest import REPO, TEST_CONFIGS, free_port, python_cmd, run, skimage_photo


@pytest.fixture()
def messy_folder(tmp_path):
    """Every kind of file a real image folder contains."""
    root = tmp_path / 'messy'
    root.mkdir()
    photo = Image.open(skimage_photo('astronaut.png')).convert('RGB')
    photo.resize((96, 96)).save(root / 'ok.jpg')
    photo.convert('RGBA').resize((80, 60)).save(root / 'rgba.png')
    photo.convert('L').resize((70, 50)).save(root / 'gray.jpg')
    photo.convert('CMYK').resize((64, 64)).save(root / 'cmyk.jpg')
    photo.resize((3, 2)).save(root / 'tiny.png')  # smaller than any crop
    sixteen = (np.asarray(photo.convert('L'), dtype=np.uint16) * 257)[:60, :40]
    Image.fromarray(sixteen).save(root / 'sixteen.png')
    rotated = photo.resize((90, 45))
    exif = rotated.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise when shown
    rotated.save(root / 'exif.jpg', exif=exif.tobytes())
    data = (root / 'ok.jpg').read_bytes()
    (root / 'truncated.jpg').write_bytes(data[: len(data) // 3])
    (root / 'empty.jpg').write_bytes(b'')
    (root / 'text.png').write_text('not an image at all')
    (root / 'README.txt').write_text('ignored by extension')
    return root


def test_decoding_modes(messy_folder):
    assert decode_rgb(str(messy_folder / 'rgba.png')).shape == (60, 80, 3)
    gray = decode_rgb(str(messy_folder / 'gray.jpg'))
    assert gray.shape == (50, 70, 3) and np.array_equal(gray[..., 0], gray[..., 2])
    assert decode_rgb(str(messy_folder / 'cmyk.jpg')).shape == (64, 64, 3)
    sixteen = decode_rgb(str(messy_folder / 'sixteen.png'))
    assert sixteen.dtype == np.uint8 and sixteen.shape == (60, 40, 3)
    # Scaled, not clipped: a 16-bit photo keeps its range instead of saturating.
    assert sixteen.min() < 100 and sixteen.max() > 150
    assert decode_rgb(str(messy_folder / 'exif.jpg')).shape == (90, 45, 3)  # transposed


def test_broken_files_are_skipped_with_a_count_and_a_limit(messy_folder):
    pipeline = [dict(type='LoadImageRGB'),
                dict(type='PairedRandomResizedCrop', size=64),
                dict(type='SlidingWindowRegions'),
                dict(type='ViewColorAugment'),
                dict(type='PackRegionPairInputs')]
    ds = UnlabeledImageFolder(data_root=str(messy_folder), pipeline=pipeline)
    assert len(ds) == 10  # README.txt ignored
    good = {'ok.jpg', 'rgba.png', 'gray.jpg', 'cmyk.jpg', 'tiny.png', 'sixteen.png', 'exif.jpg'}
    broken = {'truncated.jpg', 'empty.jpg', 'text.png'}

    # The loader alone, once per file: exactly the broken files are skipped and counted.
    loader = LoadImageRGB()
    skipped = {name for name in sorted(good | broken)
               if loader(dict(img_path=str(messy_folder / name))) is None}
    assert skipped == broken and loader.failures == 3

    # Through the dataset every index yields a good image: a skipped file makes
    # BaseDataset draw another index at random, which may be a broken file
    # again, so the dataset's loader counts at least one failure per broken file.
    seen = set()
    for i in range(len(ds)):
        item = ds[i]
        q, k = item['inputs']
        assert q.shape == (3, 64, 64)
        seen.add(osp.basename(item['data_samples'].img_path))
    assert seen <= good
    assert ds.pipeline.transforms[0].failures >= 3

    strict = UnlabeledImageFolder(data_root=str(messy_folder),
                                  pipeline=[dict(type='LoadImageRGB', max_failures=0)])
    names = [osp.basename(strict.get_data_info(i)['img_path']) for i in range(len(strict))]
    with pytest.raises(RuntimeError, match='max_failures=0'):
        strict[names.index('empty.jpg')]


def test_non_finite_loss_stops_training_and_names_the_iteration(photo_dir, tmp_path):
    from mmengine.config import Config
    from mmengine.runner import Runner
    cfg = Config.fromfile(osp.join(TEST_CONFIGS, 'crosscl_r18_tiny.py'))
    cfg.work_dir = str(tmp_path / 'nan')
    cfg.train_dataloader.dataset.data_root = photo_dir
    cfg.train_cfg.max_epochs = 2
    # lr = inf: the first update makes every weight non-finite.
    cfg.optim_wrapper.optimizer.lr = float('inf')
    # The hook reads its on-device record back at the logger's interval, here beyond the
    # epoch's 4 iterations: the end-of-epoch checkpoint is what finds iteration 2 and is refused.
    cfg.default_hooks.logger.interval = 10
    runner = Runner.from_cfg(cfg)
    with pytest.raises(FloatingPointError, match=r'non-finite loss at iteration 2 \(epoch 1\)'):
        runner.train()
    assert runner.iter == 4
    assert not glob.glob(osp.join(cfg.work_dir, 'epoch_*.pth'))


def test_sigkill_after_first_checkpoint_then_resume(photo_dir, tmp_path):
    """Two CPU processes, SIGKILL once epoch 1 is saved, then --resume finishes."""
    work_dir = str(tmp_path / 'killed')
    config = osp.join(TEST_CONFIGS, 'crosscl_r18_tiny.py')
    args = ['--work-dir', work_dir, '--cfg-options',
            f'train_dataloader.dataset.data_root={photo_dir}', 'train_cfg.max_epochs=4']
    env = dict(os.environ, PORT=str(free_port()), PYTHON=sys.executable, OMP_NUM_THREADS='1')
    proc = subprocess.Popen(['bash', 'tools/dist_train.sh', config, '2', *args], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 600
    while not osp.exists(osp.join(work_dir, 'last_checkpoint')) and time.time() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert osp.exists(osp.join(work_dir, 'epoch_1.pth'))
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        pointed = f.read().strip()
    assert 'state_dict' in load_checkpoint_safely(pointed)  # complete, not a partial write
    env['PORT'] = str(free_port())
    run(['bash', 'tools/dist_train.sh', config, '2', *args, '--resume'], env=env, timeout=1500)
    assert osp.exists(osp.join(work_dir, 'epoch_4.pth'))


def test_one_failing_rank_ends_the_job_promptly(photo_dir, tmp_path):
    config = osp.join(TEST_CONFIGS, 'crosscl_r18_tiny_fault.py')
    env = dict(PORT=str(free_port()), PYTHON=sys.executable, OMP_NUM_THREADS='1',
               PYTHONPATH=osp.join(REPO, 'tests', 'plugins'))
    start = time.time()
    proc = run(['bash', 'tools/dist_train.sh', config, '2', '--work-dir', str(tmp_path / 'fault'),
                '--cfg-options', f'train_dataloader.dataset.data_root={photo_dir}'],
               env=env, check=False, timeout=600)
    elapsed = time.time() - start
    assert proc.returncode != 0
    assert 'injected failure on rank 1' in proc.stdout + proc.stderr
    assert elapsed < 180, elapsed
