import os
import os.path as osp
import shutil
import subprocess
import sys

import numpy as np
import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TEST_CONFIGS = osp.join(REPO, 'tests', 'configs')

# Real photos shipped inside the scikit-image wheel.
PHOTOS = ('astronaut.png', 'chelsea.png', 'coffee.png', 'rocket.jpg', 'motorcycle_left.png',
          'hubble_deep_field.jpg', 'ihc.png', 'retina.jpg')


def skimage_photo(name: str) -> str:
    import skimage
    path = osp.join(osp.dirname(skimage.__file__), 'data', name)
    if not osp.exists(path):
        pytest.skip(f'scikit-image does not ship {name}')
    return path


@pytest.fixture(scope='session')
def photo_dir(tmp_path_factory):
    """A folder of real photos as JPEGs, in ImageNet-like class folders."""
    from crosscl_mm.utils.sample_photos import export_photo_folder
    root = str(tmp_path_factory.mktemp('photos'))
    written = export_photo_folder(root, PHOTOS)
    assert len(written) == len(PHOTOS)
    return root


def run(cmd, env=None, timeout=1200, cwd=REPO, check=True):
    """Run a command, returning the CompletedProcess; show its output on failure."""
    full_env = dict(os.environ, PYTHONUNBUFFERED='1')
    full_env.update(env or {})
    proc = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{cmd} exited {proc.returncode}\n--- stdout\n{proc.stdout[-6000:]}'
                             f'\n--- stderr\n{proc.stderr[-6000:]}')
    return proc


def python_cmd(*args):
    return [sys.executable, *args]


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]
