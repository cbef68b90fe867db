import os
import os.path as osp
import shutil
import subprocess
import sys

import numpy as np
import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TEST_CONFIGS = osp.join(REPO, 'tests', 'configs')

# This environment's self-supervised package beside mmdet: mmselfsup (`make test`)
# or mmpretrain (`make test ENV=mmpretrain`). Tests of one package's own configs
# and tools run in that package's environment; CI runs both.
from crosscl_mm.utils.stack import selfsup_package  # noqa: E402

SELFSUP_PACKAGE = selfsup_package()
assert SELFSUP_PACKAGE is not None, 'neither mmselfsup nor mmpretrain is installed'
# The package's own DenseCL config, made tiny (tests/configs/densecl_r18_tiny_<package>.py).
DENSECL_TINY = osp.join(TEST_CONFIGS, f'densecl_r18_tiny_{SELFSUP_PACKAGE}.py')


def only_with(package):
    return pytest.mark.skipif(SELFSUP_PACKAGE != package,
                              reason=f'{package} environment only (make test ENV={package})')

# Real photos shipped inside the scikit-image wheel.
PHOTOS = ('astronaut.png', 'chelsea.png', 'coffee.png', 'rocket.jpg', 'motorcycle_left.png',
          'hubble_deep_field.jpg', 'ihc.png', 'retina.jpg')


def skimage_photo(name: str) -> str:
    import skimage
    path = osp.join(osp.dirname(skimage.__file__), 'data', name)
    if not osp.exists(path):
        pytest.skip(f'scikit-image does not ship {name}')
    return path


@pytest.fixture(autouse=True)
def one_visualizer_per_test():
    """Forget the process's Visualizers when a test ends.

    mmengine keeps one Visualizer per name for the whole process, and our
    configs name theirs 'visualizer' as mmselfsup's and mmdet's do: a second
    Runner built in the same process would reuse the first one's backends and
    write its config and scalars into the first run's work_dir (by then
    removed with that test's tmp_path).
    """
    yield
    if 'mmengine.visualization' in sys.modules:
        from mmengine.visualization import Visualizer
        pending = [Visualizer]
        while pending:
            cls = pending.pop()
            cls._instance_dict.clear()
            pending.extend(cls.__subclasses__())


@pytest.fixture(scope='module')
def module_tmp_path(request, tmp_path_factory):
    """A folder shared by one test module, removed when the module is done.

    A run of the suite writes several GiB of ResNet-50 checkpoints; pytest
    removes each passing test's ``tmp_path`` (``tmp_path_retention_policy``
    in pytest.ini) but keeps module-level folders until the session ends.
    """
    path = tmp_path_factory.mktemp(request.module.__name__.rsplit('.', 1)[-1])
    yield path
    shutil.rmtree(path, ignore_errors=True)


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


def run_forked_ranks(worker, world, out_dir, *args, timeout=300):
    """Run ``worker(rank, port, *args, out_path)`` in ``world`` processes
    forked from this one (which has imported everything already, as
    mmengine's dataloader workers are forked), ``port`` a free loopback port
    for their process group, and return what each rank saved to its
    ``out_path`` (``torch.save``). A worker writes its traceback to
    ``out_path + '.error'``; one failing rank ends the run (the others
    would wait for it until the timeout) and the tracebacks are shown."""
    import time
    import torch
    outs = [str(out_dir / f'rank{r}.pth') for r in range(world)]
    port = free_port()
    context = torch.multiprocessing.get_context('fork')
    procs = [context.Process(target=worker, args=(rank, port, *args, outs[rank]))
             for rank in range(world)]
    for proc in procs:
        proc.start()
    deadline = time.time() + timeout
    while any(p.is_alive() for p in procs) and time.time() < deadline \
            and not any(p.exitcode for p in procs):
        time.sleep(0.05)
    for proc in procs:
        if proc.is_alive():
            proc.kill()
        proc.join()
    errors = [out + '.error' for out in outs]
    assert all(p.exitcode == 0 for p in procs), '\n'.join(
        [f'exit codes {[p.exitcode for p in procs]}']
        + [open(e).read() for e in errors if osp.exists(e)])
    return [torch.load(out, weights_only=True) for out in outs]


def run_snippet_on_two_ranks(code: str, timeout: int = 300) -> None:
    """Run a python snippet in two processes of one gloo group (RANK,
    WORLD_SIZE, MASTER_ADDR/PORT set; the snippet initialises the group)."""
    import textwrap
    env = dict(os.environ, MASTER_ADDR='127.0.0.1', MASTER_PORT=str(free_port()),
               WORLD_SIZE='2', OMP_NUM_THREADS='1')
    procs = [subprocess.Popen(python_cmd('-c', textwrap.dedent(code)), env=dict(env, RANK=str(r)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for r in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=timeout)
        assert p.returncode == 0, err[-3000:]


@pytest.fixture(scope='session')
def shapes_data(tmp_path_factory):
    """The generated shapes-on-photos data, small: COCO format (4 train and 4
    val images of 160x128) and its VOC-format copy (VOC2007 trainval/test,
    VOC2012 trainval; every 4th object difficult)."""
    from crosscl_mm.datasets.shapes_on_photos import make_shapes_on_photos, write_voc_copy
    from crosscl_mm.utils.sample_photos import skimage_photo_paths
    root = tmp_path_factory.mktemp('shapes')
    coco = str(root / 'coco')
    anns = make_shapes_on_photos(coco, skimage_photo_paths(PHOTOS[:4]), num_train=4, num_val=4,
                                 size=(160, 128), seed=1)
    voc = str(root / 'voc')
    image_sets = write_voc_copy(coco, voc, difficult_every=4)
    return dict(coco=coco, voc=voc, image_sets=image_sets, **anns)


@pytest.fixture
def one_thread():
    """torch on one thread for the test: narrow networks make many tiny ops, for
    which a second thread only adds waiting, and a comparison with ranks that
    run on one thread (OMP_NUM_THREADS=1) then sums in the same order."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def restore_default_scope():
    """Each test starts and ends with the same mmengine default scope. A Runner
    built in this process (the protocol tests train in-process) leaves its
    DefaultScope behind, and mmengine answers the newest instance as the
    current scope: later tests then built `CrossCL` in mmdet's registry."""
    from mmengine.registry import DefaultScope
    before = dict(DefaultScope._instance_dict)
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(before)
