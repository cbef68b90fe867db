"""Install mmcv with compiled ops for the torch in this environment.

mmcv publishes no wheels for current torch releases, and the sdist of the
pinned version hard-codes ``-std=c++14`` while torch >= 2.13 headers need
C++17 and torch >= 2.14 headers need C++20 (``#error C++20 or later
compatible compiler is required to use ATen``). This script builds the sdist
with the C++ standard the installed torch asks for, with CUDA ops when a CUDA
toolchain and GPU are present, and caches the wheel outside the repository,
keyed by everything the binary depends on, so a second install takes seconds.

Usage: python tools/install/build_mmcv.py [--version 2.0.1] [--cache DIR]
"""
import argparse
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time


def log(msg):
    print(f'[build_mmcv] {msg}', flush=True)


def required_cxx_standard(torch_include):
    """The C++ standard that torch's own headers refuse to compile without."""
    standard = 14
    for header in ('ATen/ATen.h', 'torch/csrc/api/include/torch/all.h',
                   'c10/util/C++17.h', 'c10/macros/Macros.h'):
        path = osp.join(torch_include, header)
        if not osp.exists(path):
            continue
        with open(path, encoding='utf-8', errors='replace') as f:
            text = f.read()
        for found in re.findall(r'C\+\+(\d\d) or later', text):
            standard = max(standard, int(found))
    return standard


def cuda_build_wanted(torch):
    if os.environ.get('FORCE_CUDA') == '1':
        return True
    return (torch.version.cuda is not None and torch.cuda.is_available()
            and shutil.which('nvcc') is not None)


def cache_key(mmcv_version, torch, with_cuda, cxx):
    abi = sysconfig.get_config_var('SOABI') or f'py{sys.version_info[0]}{sys.version_info[1]}'
    device = f'cu{torch.version.cuda.replace(".", "")}' if with_cuda else 'cpu'
    return f'mmcv-{mmcv_version}_torch-{torch.__version__}_{abi}_{device}_cxx{cxx}'


def patch_cxx_standard(setup_py, cxx):
    with open(setup_py, encoding='utf-8') as f:
        text = f.read()
    patched = text.replace('-std=c++14', f'-std=c++{cxx}').replace('/std:c++14', f'/std:c++{cxx}')
    with open(setup_py, 'w', encoding='utf-8') as f:
        f.write(patched)
    return text != patched


def pip(*args, **kwargs):
    cmd = [sys.executable, '-m', 'pip', *args]
    log('$ ' + ' '.join(cmd))
    subprocess.run(cmd, check=True, **kwargs)


def build_wheel(mmcv_version, cxx, with_cuda, out_dir):
    with tempfile.TemporaryDirectory(prefix='mmcv-build-') as tmp:
        pip('download', '--no-deps', '--no-binary', ':all:', '--no-build-isolation',
            f'mmcv=={mmcv_version}', '-d', tmp)
        sdist = osp.join(tmp, f'mmcv-{mmcv_version}.tar.gz')
        with tarfile.open(sdist) as tar:
            tar.extractall(tmp, filter='data')
        src = osp.join(tmp, f'mmcv-{mmcv_version}')
        if cxx > 14 and not patch_cxx_standard(osp.join(src, 'setup.py'), cxx):
            log('warning: found no -std=c++14 to raise in setup.py')
        env = dict(os.environ, MMCV_WITH_OPS='1',
                   MAX_JOBS=os.environ.get('MAX_JOBS', str(os.cpu_count() or 2)))
        env['FORCE_CUDA'] = '1' if with_cuda else '0'
        log(f'compiling mmcv {mmcv_version} ops (C++{cxx}, '
            f'{"CUDA" if with_cuda else "CPU"}); 12 to 26 minutes on 2 cores, once per torch version')
        start = time.time()
        pip('wheel', '--no-deps', '--no-build-isolation', '-w', osp.join(tmp, 'dist'), src, env=env)
        log(f'compiled in {time.time() - start:.0f} s')
        wheels = os.listdir(osp.join(tmp, 'dist'))
        if len(wheels) != 1:
            raise SystemExit(f'[build_mmcv] expected one wheel, found {wheels}')
        os.makedirs(out_dir, exist_ok=True)
        staged = osp.join(out_dir, wheels[0] + '.partial')
        shutil.copy(osp.join(tmp, 'dist', wheels[0]), staged)
        os.replace(staged, osp.join(out_dir, wheels[0]))  # never leave a half-written wheel
        return osp.join(out_dir, wheels[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--version', default='2.0.1')
    default_cache = osp.join(os.environ.get('XDG_CACHE_HOME', osp.expanduser('~/.cache')),
                             'crosscl_mm')
    parser.add_argument('--cache', default=os.environ.get('CROSSCL_MM_CACHE', default_cache))
    args = parser.parse_args()

    try:
        import torch
    except ImportError:
        raise SystemExit('[build_mmcv] torch is not installed in this environment; '
                         'install torch (and torchvision) first')
    cxx = required_cxx_standard(osp.join(osp.dirname(torch.__file__), 'include'))
    with_cuda = cuda_build_wanted(torch)
    key = cache_key(args.version, torch, with_cuda, cxx)
    out_dir = osp.join(args.cache, 'wheels', key)
    cached = [f for f in os.listdir(out_dir) if f.endswith('.whl')] if osp.isdir(out_dir) else []
    if cached:
        wheel = osp.join(out_dir, cached[0])
        log(f'using cached wheel {wheel}')
    else:
        log(f'no cached wheel for {key}')
        wheel = build_wheel(args.version, cxx, with_cuda, out_dir)
    pip('install', '--no-deps', '--force-reinstall', wheel)


if __name__ == '__main__':
    main()
