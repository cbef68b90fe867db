"""`mim train crosscl_mm CONFIG` and `mim train mmselfsup CONFIG` (or `mim
train mmpretrain CONFIG` in that environment), run from another directory so
that mim has to find the package's tools itself."""
import os.path as osp
import re
import sys

import pytest

from conftest import REPO, SELFSUP_PACKAGE, TEST_CONFIGS, run
from crosscl_mm.utils.work_dir import read_scalars

MIM = osp.join(osp.dirname(sys.executable), 'mim')


@pytest.mark.parametrize('package', ['crosscl_mm', SELFSUP_PACKAGE])
def test_mim_train(package, photo_dir, tmp_path):
    if not osp.exists(MIM):
        pytest.fail(f'mim is not installed beside {sys.executable}')
    work_dir = str(tmp_path / package)
    proc = run([MIM, 'train', package, osp.join(TEST_CONFIGS, 'crosscl_r18_tiny.py'),
                '--work-dir', work_dir, '--cfg-options',
                f'train_dataloader.dataset.data_root={photo_dir}'], cwd=str(tmp_path), timeout=900)
    script = f'{package}/.mim/tools/train.py'
    assert 'Training command is' in proc.stdout and script in proc.stdout
    assert osp.exists(osp.join(work_dir, 'epoch_1.pth'))
    records = [r for r in read_scalars(work_dir) if 'loss_p3_p4' in r]
    assert len(records) == 4


def test_mim_search_lists_every_pretraining_config(tmp_path):
    """configs/metafile.yml (through model-index.yml in crosscl_mm/.mim) names
    every top-level pretraining config, and each named config exists."""
    import glob
    proc = run([MIM, 'search', 'crosscl_mm'], cwd=str(tmp_path), timeout=300)
    listed = sorted(line.split('config id:')[1].strip()
                    for line in proc.stdout.splitlines() if 'config id:' in line)
    configs = sorted(osp.splitext(osp.basename(p))[0]
                     for p in glob.glob(osp.join(REPO, 'configs', '*.py')))
    assert listed == configs
    shown = re.findall(r'^config\s+(configs/\S+\.py)\s*$', proc.stdout, re.M)
    assert len(shown) == len(configs)
    assert all(osp.exists(osp.join(REPO, p)) for p in shown)
