"""Install mmcv with compiled ops for the torch in this environment.

mmcv publishes no wheels for current torch releases, and the sdist of the
pinned version hard-codes ``-std=c++14`` while torch >= 2.13 headers need
C++17 and torch >= 2.14 headers need C++20 (``#error C++20 or later
compatible compiler is required to use ATen``). This script builds the sdist
with the C++ standard the installed torch asks for, with CUDA ops when a CUDA
toolchain and GPU are present (or ``FORCE_CUDA=1``), and caches the wheel
outside the repository, keyed by everything the binary depends on (the CUDA
architectures included), so a second install takes seconds.

Without a GPU or a system CUDA toolkit (a cluster login node), ``FORCE_CUDA=1``
takes nvcc, cccl, crt and nvvm from the package registry's NVIDIA wheels, at
the versions the installed torch's ``cuda-toolkit`` requirement names, into
the cache, and compiles against the CUDA headers torch's own wheels installed.
``TORCH_CUDA_ARCH_LIST`` (e.g. "8.0;9.0") says which GPUs the wheel is for.

Usage: FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="8.0;9.0" python tools/install/build_mmcv.py
       python tools/install/build_mmcv.py [--version 2.0.1] [--cache DIR]
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


def cache_key(mmcv_version, torch, with_cuda, cxx, arch_list=None):
    """The wheel's cache folder name. A CUDA wheel runs only on the GPUs it was
    compiled for, so its architectures are part of the key."""
    abi = sysconfig.get_config_var('SOABI') or f'py{sys.version_info[0]}{sys.version_info[1]}'
    device = 'cpu'
    if with_cuda:
        device = f'cu{torch.version.cuda.replace(".", "")}'
        if arch_list:
            device += '-sm' + '.'.join(a.replace('.', '').replace('+PTX', 'ptx')
                                       for a in re.split(r'[;\s]+', arch_list.strip()) if a)
    return f'mmcv-{mmcv_version}_torch-{torch.__version__}_{abi}_{device}_cxx{cxx}'


# The parts of the CUDA toolkit that compiling needs beyond what torch's own
# NVIDIA wheels install (runtime, cuBLAS, cuSPARSE, ... headers and libraries):
# the cuda-toolkit metapackage's extras that name the compiler.
COMPILER_EXTRAS = ('nvcc', 'cccl', 'crt', 'nvvm')


def toolkit_wheel_specs(requirements, extras=COMPILER_EXTRAS):
    """Pinned requirement strings of the compiler wheels, read from the
    ``cuda-toolkit`` distribution's requirements (``Requires-Dist`` lines)
    for this platform; the runtime is left out (torch installed it)."""
    from packaging.requirements import Requirement
    specs = {}
    for line in requirements or ():
        req = Requirement(line)
        if req.name == 'nvidia-cuda-runtime' or req.marker is None:
            continue
        if any(req.marker.evaluate({'extra': extra}) for extra in extras):
            specs[req.name] = f'{req.name}{req.specifier}'
    return [specs[name] for name in sorted(specs)]


def torch_cuda_root(torch):
    """Where torch's NVIDIA wheels put the CUDA headers and libraries
    (site-packages/nvidia/cu<major>)."""
    import importlib.util
    spec = importlib.util.find_spec('nvidia')
    major = torch.version.cuda.split('.')[0]
    for base in (spec.submodule_search_locations if spec else ()):
        root = osp.join(base, f'cu{major}')
        if osp.isdir(osp.join(root, 'include')):
            return root
    raise SystemExit(f'[build_mmcv] FORCE_CUDA=1: torch {torch.__version__} has no CUDA headers '
                     f'in site-packages/nvidia/cu{major}/include; install a CUDA build of torch '
                     f'or point CUDA_HOME at a CUDA {torch.version.cuda} toolkit')


def link_missing_entries(source_dir, target_dir):
    """Symlink every entry of source_dir that target_dir lacks (the two trees
    of one CUDA release, from different wheels, become one CUDA_HOME)."""
    os.makedirs(target_dir, exist_ok=True)
    for name in os.listdir(source_dir):
        link = osp.join(target_dir, name)
        if not osp.lexists(link):
            os.symlink(osp.join(source_dir, name), link)


def assemble_cuda_home(compiler_root, runtime_root):
    """Make compiler_root (nvcc, cccl, crt, nvvm) a CUDA_HOME that torch's
    cpp_extension and nvcc accept: the runtime's headers and libraries linked
    in, ``lib64``, and the unversioned ``libcudart.so`` the linker asks for."""
    for part in ('include', 'lib'):
        link_missing_entries(osp.join(runtime_root, part), osp.join(compiler_root, part))
    lib = osp.join(compiler_root, 'lib')
    if not osp.lexists(osp.join(compiler_root, 'lib64')):
        os.symlink('lib', osp.join(compiler_root, 'lib64'))
    versioned = sorted(n for n in os.listdir(lib) if re.fullmatch(r'libcudart\.so\.\d+', n))
    if versioned and not osp.lexists(osp.join(lib, 'libcudart.so')):
        os.symlink(versioned[-1], osp.join(lib, 'libcudart.so'))
    nvcc = osp.join(compiler_root, 'bin', 'nvcc')
    if not os.access(nvcc, os.X_OK):
        raise SystemExit(f'[build_mmcv] {nvcc} is missing: the nvidia-cuda-nvcc wheel did not install it')
    return compiler_root


def cuda_home_from_wheels(torch, cache):
    """A CUDA_HOME for torch's CUDA version, made from registry wheels and kept
    in the cache (keyed by the pinned versions), so a login node without CUDA
    can compile the CUDA ops."""
    import importlib.metadata
    try:
        requirements = importlib.metadata.requires('cuda-toolkit')
    except importlib.metadata.PackageNotFoundError:
        requirements = None
    specs = toolkit_wheel_specs(requirements)
    if not specs:
        raise SystemExit(f'[build_mmcv] FORCE_CUDA=1 without a CUDA toolkit: torch {torch.__version__} '
                         f'does not name its compiler wheels (no cuda-toolkit requirement with the '
                         f'nvcc extra); set CUDA_HOME to a CUDA {torch.version.cuda} toolkit instead')
    major = torch.version.cuda.split('.')[0]
    key = '_'.join(s.replace('==', '-').replace('.*', '') for s in specs)
    home = osp.join(cache, 'cuda-toolkit', key)
    cuda_root = osp.join(home, 'nvidia', f'cu{major}')
    if not osp.exists(osp.join(home, '.complete')):
        shutil.rmtree(home, ignore_errors=True)
        staged = home + '.partial'
        shutil.rmtree(staged, ignore_errors=True)
        log(f'fetching the CUDA compiler wheels: {" ".join(specs)}')
        pip('install', '--no-deps', '--target', staged, *specs)
        os.makedirs(osp.dirname(home), exist_ok=True)
        os.replace(staged, home)
        assemble_cuda_home(cuda_root, torch_cuda_root(torch))
        open(osp.join(home, '.complete'), 'w').close()
    out = subprocess.run([osp.join(cuda_root, 'bin', 'nvcc'), '--version'], check=True,
                         capture_output=True, text=True).stdout
    if f'release {torch.version.cuda}' not in out:
        raise SystemExit(f'[build_mmcv] {cuda_root}/bin/nvcc is not CUDA {torch.version.cuda}:\n{out}')
    log(f'CUDA_HOME={cuda_root} ({out.strip().splitlines()[-1]})')
    return cuda_root


def cuda_ops_compiled():
    """Whether the installed mmcv's ops were compiled with CUDA (asked of the
    extension; nothing runs on a GPU)."""
    out = subprocess.run([sys.executable, '-c', 'from mmcv.ops import get_compiling_cuda_version '
                          'as v; print(v())'], capture_output=True, text=True)
    return out.returncode == 0 and out.stdout.strip() not in ('', 'not available')


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


def build_wheel(mmcv_version, cxx, with_cuda, out_dir, cuda_home=None):
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
        if cuda_home:
            env['CUDA_HOME'] = cuda_home
            env['PATH'] = osp.join(cuda_home, 'bin') + os.pathsep + env.get('PATH', '')
        log(f'compiling mmcv {mmcv_version} ops (C++{cxx}, '
            + (f'CUDA for {os.environ.get("TORCH_CUDA_ARCH_LIST", "this GPU")}); hours on 2 cores'
               if with_cuda else 'CPU); 12 to 26 minutes on 2 cores') + ', once per torch version')
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
    if with_cuda and torch.version.cuda is None:
        raise SystemExit(f'[build_mmcv] FORCE_CUDA=1 but torch {torch.__version__} is a CPU build')
    arch_list = os.environ.get('TORCH_CUDA_ARCH_LIST') if with_cuda else None
    if with_cuda and not arch_list and not torch.cuda.is_available():
        raise SystemExit('[build_mmcv] FORCE_CUDA=1 without a GPU: set TORCH_CUDA_ARCH_LIST to the '
                         'GPUs the wheel is for, e.g. "8.0;9.0" (A100, H100/H200)')
    key = cache_key(args.version, torch, with_cuda, cxx, arch_list)
    out_dir = osp.join(args.cache, 'wheels', key)
    cached = [f for f in os.listdir(out_dir) if f.endswith('.whl')] if osp.isdir(out_dir) else []
    if cached:
        wheel = osp.join(out_dir, cached[0])
        log(f'using cached wheel {wheel}')
    else:
        log(f'no cached wheel for {key}')
        cuda_home = None
        if with_cuda and not (os.environ.get('CUDA_HOME') or shutil.which('nvcc')):
            cuda_home = cuda_home_from_wheels(torch, args.cache)
        wheel = build_wheel(args.version, cxx, with_cuda, out_dir, cuda_home)
    pip('install', '--no-deps', '--force-reinstall', wheel)
    if with_cuda and not cuda_ops_compiled():
        raise SystemExit(f'[build_mmcv] {wheel} was installed but mmcv.ops reports no CUDA support')
    if with_cuda:
        log('mmcv.ops reports CUDA support (not run: no GPU needed for this check)')


if __name__ == '__main__':
    main()
