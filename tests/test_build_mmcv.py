"""tools/install/build_mmcv.py's CUDA-without-a-GPU path, the parts that run
without a download: which compiler wheels match the installed torch, the
wheel cache key, and the CUDA_HOME assembled from two wheel trees."""
import importlib.metadata
import os
import os.path as osp
import sys
import types

import pytest

from conftest import REPO

sys.path.insert(0, osp.join(REPO, 'tools', 'install'))
import build_mmcv  # noqa: E402

LINUX = "sys_platform == 'linux' and platform_machine == 'x86_64'"
# Requires-Dist lines in the form the cuda-toolkit 13.0.3 metapackage writes them.
TOOLKIT_REQUIRES = [
    f"nvidia-cuda-cccl==13.0.85.*; ({LINUX}) and extra == 'cccl'",
    f"nvidia-cuda-crt==13.0.88.*; ({LINUX}) and extra == 'nvcc'",
    f"nvidia-cuda-nvcc==13.0.88.*; ({LINUX}) and extra == 'nvcc'",
    f"nvidia-cuda-runtime==13.0.96.*; ({LINUX}) and extra == 'nvcc'",
    f"nvidia-nvvm==13.0.88.*; ({LINUX}) and extra == 'nvvm'",
    f"nvidia-cublas==13.1.0.3.*; ({LINUX}) and extra == 'cublas'",
    f"nvidia-cuda-nvcc==13.0.88.*; ({LINUX}) and extra == 'all'",
]


def test_compiler_wheels_are_the_nvcc_cccl_crt_nvvm_pins_without_the_runtime():
    assert build_mmcv.toolkit_wheel_specs(TOOLKIT_REQUIRES) == [
        'nvidia-cuda-cccl==13.0.85.*', 'nvidia-cuda-crt==13.0.88.*',
        'nvidia-cuda-nvcc==13.0.88.*', 'nvidia-nvvm==13.0.88.*']
    assert build_mmcv.toolkit_wheel_specs(None) == []
    # Another platform's pins are not taken.
    assert build_mmcv.toolkit_wheel_specs(
        ["nvidia-cuda-nvcc==13.0.88.*; sys_platform == 'win32' and extra == 'nvcc'"]) == []


def test_compiler_wheels_of_the_installed_torch_match_its_cuda_release():
    import torch
    if torch.version.cuda is None:
        pytest.skip('CPU build of torch')
    try:
        requires = importlib.metadata.requires('cuda-toolkit')
    except importlib.metadata.PackageNotFoundError:
        pytest.skip('torch installed without the cuda-toolkit metapackage')
    specs = build_mmcv.toolkit_wheel_specs(requires)
    names = [s.split('==')[0] for s in specs]
    assert names == ['nvidia-cuda-cccl', 'nvidia-cuda-crt', 'nvidia-cuda-nvcc', 'nvidia-nvvm']
    for spec in specs:
        assert spec.split('==')[1].startswith(torch.version.cuda + '.'), spec


def test_cache_key_names_the_cuda_release_and_every_architecture():
    torch = types.SimpleNamespace(__version__='2.14.1+cu130', version=types.SimpleNamespace(cuda='13.0'))
    cpu = build_mmcv.cache_key('2.0.1', torch, False, 20, '8.0;9.0')
    a100_h100 = build_mmcv.cache_key('2.0.1', torch, True, 20, '8.0;9.0')
    h100 = build_mmcv.cache_key('2.0.1', torch, True, 20, '9.0')
    ptx = build_mmcv.cache_key('2.0.1', torch, True, 20, '8.0 9.0+PTX')
    assert cpu.endswith('_cpu_cxx20')
    assert a100_h100.endswith('_cu130-sm80.90_cxx20')
    assert h100.endswith('_cu130-sm90_cxx20')
    assert ptx.endswith('_cu130-sm80.90ptx_cxx20')
    assert len({cpu, a100_h100, h100, ptx}) == 4


def _tree(root, files):
    for rel in files:
        path = osp.join(root, rel)
        os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write(rel)


def test_cuda_home_links_the_runtime_into_the_compiler_tree(tmp_path):
    compiler, runtime = str(tmp_path / 'tk' / 'cu13'), str(tmp_path / 'torch' / 'cu13')
    _tree(compiler, ['bin/nvcc', 'include/crt/host_config.h', 'include/cuda/std/version',
                     'lib/libnvptxcompiler_static.a'])
    os.chmod(osp.join(compiler, 'bin', 'nvcc'), 0o755)
    _tree(runtime, ['include/cuda_runtime.h', 'include/cublas_v2.h', 'include/crt/host_config.h',
                    'lib/libcudart.so.13', 'lib/libcublas.so.13'])
    home = build_mmcv.assemble_cuda_home(compiler, runtime)
    assert home == compiler
    inc, lib = osp.join(home, 'include'), osp.join(home, 'lib64')
    assert open(osp.join(inc, 'cuda_runtime.h')).read() == 'include/cuda_runtime.h'
    assert open(osp.join(inc, 'cublas_v2.h')).read() == 'include/cublas_v2.h'
    # The compiler's own copy wins over the runtime's.
    assert not osp.islink(osp.join(inc, 'crt'))
    assert open(osp.join(inc, 'crt', 'host_config.h')).read() == 'include/crt/host_config.h'
    assert open(osp.join(lib, 'libcudart.so')).read() == 'lib/libcudart.so.13'
    assert os.readlink(osp.join(home, 'lib', 'libcudart.so')) == 'libcudart.so.13'
    # Assembling twice changes nothing.
    assert build_mmcv.assemble_cuda_home(compiler, runtime) == compiler


def test_a_tree_without_nvcc_is_refused(tmp_path):
    compiler, runtime = str(tmp_path / 'tk'), str(tmp_path / 'rt')
    _tree(compiler, ['include/x.h', 'lib/y.a'])
    _tree(runtime, ['include/cuda_runtime.h', 'lib/libcudart.so.13'])
    with pytest.raises(SystemExit, match='bin/nvcc is missing'):
        build_mmcv.assemble_cuda_home(compiler, runtime)
