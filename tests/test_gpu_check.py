"""tools/analysis_tools/gpu_check.py's CPU dry run: the stages that need CUDA
say so and skip, the others run the same code as on a GPU with tiny sizes."""
import os.path as osp
import re
import sys

import pytest

from conftest import REPO, run

sys.path.insert(0, osp.join(REPO, 'tools', 'analysis_tools'))
import gpu_check  # noqa: E402  tools/analysis_tools/gpu_check.py

TERMS = ('loss_global', 'loss_p4', 'loss_p3', 'loss_p4_p3', 'loss_p3_p4')


def test_dry_run_env_prroi_amp_sync(capsys, tmp_path):
    status = gpu_check.main(['--device', 'cpu', '--dry-run', '--work-dir', str(tmp_path),
                             '--stages', 'env', 'prroi', 'amp', 'sync'])
    out = capsys.readouterr().out
    assert status == 0, out
    assert 'env: ok, prroi: ok, amp: ok, sync: ok' in out
    assert 'device: CPU (no CUDA)' in out and re.search(r'^torch \d+\.\d+', out, re.M)
    assert 'mmcv side SKIPPED: mmcv.ops.PrRoIPool has CUDA kernels only' in out
    # Our pooling on every case the GPU compares: random boxes and CrossCL's windows at the
    # three sizes, on P3 (stride 8) and P4 (stride 16) maps, 2 images x 72 boxes.
    cases = re.findall(r'^\| (random boxes 224px|CrossCL windows (?:224|384|480)px) \| '
                       r'P([34]) \((\d+)x\3\) \| 2x72 \|(?: n/a \|){4} [\d.]+ \| n/a \|$', out, re.M)
    assert [(c, p, int(side)) for c, p, side in cases] == [
        ('random boxes 224px', '3', 28), ('random boxes 224px', '4', 14),
        ('CrossCL windows 224px', '3', 28), ('CrossCL windows 224px', '4', 14),
        ('CrossCL windows 384px', '3', 48), ('CrossCL windows 384px', '4', 24),
        ('CrossCL windows 480px', '3', 60), ('CrossCL windows 480px', '4', 30)], out
    assert 'SKIPPED: torch.cuda.set_sync_debug_mode needs CUDA' in out
    assert 'AMP: torch.bfloat16, loss scaling off' in out
    rows = dict(re.findall(r'^\| (loss_\w+) \| [-\d.]+ \| [-\d.]+ \| ([\d.e+-]+) \|', out, re.M))
    assert sorted(rows) == sorted(TERMS), out
    assert all(float(diff) < 0.05 for diff in rows.values()), rows
    assert re.search(r"pooling contractions \(bmm\) ran in: \{'float32': \d+\}", out), out
    assert re.search(r"convolutions ran in: \{'bfloat16': \d+\}", out), out
    assert re.search(r'gradients: 0 non-finite of \d+ under AMP', out), out


@pytest.mark.slow
def test_full_dry_run_through_the_shell_script():
    proc = run(['bash', 'tools/analysis_tools/gpu_check.sh', '--dry-run'],
               env=dict(PYTHON=sys.executable), timeout=900)
    assert 'env: ok, prroi: ok, amp: ok, sync: ok, augment: ok, bench: ok, dist: ok' in proc.stdout, \
        proc.stdout[-4000:]
    assert re.search(r"checkpoints: \['epoch_1.pth'\]", proc.stdout)


def test_mmcv_prroi_binding_reaches_the_module_not_the_function():
    # mmcv.ops re-exports the function under the module's name: binding the kernels to
    # `import mmcv.ops.prroi_pool as m` failed on the GPU ("'method' object has no
    # attribute 'ext_module'"). The binding must land on the module the Function reads.
    import mmcv.ops.prroi_pool  # noqa: F401
    module = sys.modules['mmcv.ops.prroi_pool']
    saved = module.ext_module
    marker = object()
    try:
        assert gpu_check.mmcv_prroi_pool(marker) is module.prroi_pool
        assert module.ext_module is marker
    finally:
        module.ext_module = saved


def test_adjust_hue_patch_keeps_numpy1_values(tmp_path):
    """The patched shift equals what numpy 1 computed for mmcv 2.0.1's
    ``np.uint8(hue_factor * 255)`` over the whole jitter range (numpy 2 refuses
    the negative ones; that failure is in docs/benchmark.md's GPU log)."""
    import mmcv
    import numpy as np
    source = osp.join(osp.dirname(mmcv.__file__), 'image', 'photometric.py')
    sdist = tmp_path / 'mmcv-2.0.1'
    (sdist / 'mmcv' / 'image').mkdir(parents=True)
    with open(source) as f:
        original = f.read()
    (sdist / 'mmcv' / 'image' / 'photometric.py').write_text(original)
    assert gpu_check.patch_adjust_hue_for_numpy2(str(sdist)) == original.count(gpu_check.HUE_SHIFT) == 2
    patched = (sdist / 'mmcv' / 'image' / 'photometric.py').read_text()
    assert gpu_check.HUE_SHIFT not in patched
    assert patched.count(gpu_check.HUE_SHIFT_WRAPPED) == 2
    assert int(np.__version__.split('.')[0]) < 2  # this environment computes numpy 1's values
    for hue_factor in np.linspace(-0.5, 0.5, 1001):
        with np.errstate(over='ignore'):
            assert eval(gpu_check.HUE_SHIFT_WRAPPED) == eval(gpu_check.HUE_SHIFT), hue_factor
