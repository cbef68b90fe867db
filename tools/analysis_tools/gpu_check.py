"""The CUDA path in one run: pooling parity with mmcv's CUDA kernel, mixed
precision, host synchronisations, the pretraining benchmark and the launcher.

    python tools/analysis_tools/gpu_check.py [--device cuda|cpu] [--dry-run] \
        [--stages env prroi amp sync augment bench dist] [--mmcv-src DIR] \
        [--prroi-build DIR] \
        [--work-dir DIR]
    python tools/analysis_tools/gpu_check.py --build-prroi-ext MMCV_SRC BUILD_DIR
    python tools/analysis_tools/gpu_check.py --build-mmcv-cpu-ops MMCV_SRC

``tools/analysis_tools/gpu_check.sh`` prepares a fresh GPU machine (carried
wheels, mmcv built for its torch) and runs this; docs/benchmark.md has the
commands. Stages, each printed with its time (a failed stage prints its error
and the others still run; the exit status is 1 if any failed):

- env: device, driver, torch, CUDA, cuDNN and package versions;
- prroi: ``prroi_pool_1x1`` against mmcv's PrRoIPool CUDA kernels (compiled
  from the mmcv 2.0.1 sdist by ``--build-prroi-ext``), forward and backward,
  on random maps and on CrossCL's windows from its own pipeline at 224, 384
  and 480 px on P3 (stride 8) and P4 (stride 16) maps: max abs error, error
  relative to the largest reference value, and both ops' time (mmcv has no
  CPU kernel: on the CPU ours alone is timed);
- amp: CrossCL's five losses and its gradients on one batch in float32 and
  under ``MixedPrecisionOptimWrapper``, and the dtypes the pooling
  contractions (``bmm``) and the loss's ``log_softmax`` ran in;
- sync: host synchronisations of one CrossCL ``train_step`` plus
  ``FiniteLossHook`` under ``torch.cuda.set_sync_debug_mode('warn')``, by
  source line. CUDA only (tests/test_host_sync.py is the CPU review);
- augment: the photometric ops on the device (``color_augment_check.report``):
  each op against PIL with fixed parameters, the two-sample statistics of
  many draws against the torchvision/PIL recipe (and the hue 0.4 and
  shared-order mutations, which must fail), the ops' images/s at batch 64,
  128 and 256 of 224 px views; then ``benchmark_pretrain.data_only``: CPU
  time per image of CrossCL's and DetCo's pipelines with PIL colours and
  without (this machine's cores), and the time the data preprocessor adds
  per batch of 256 for the colours on the device;
- bench: ``benchmark_pretrain.run_benchmark`` for CrossCL, MoCo v2 and
  DenseCL, batch 64 at 224 px, fp32 and AMP, pipelines with 16 workers,
  then AMP with channels-last parameters;
- dist: ``bash tools/dist_train.sh CONFIG 1`` for 4 iterations of the AMP
  config (NCCL on a GPU; gloo on the CPU).

``--dry-run`` (with ``--device cpu``) runs the same code with tiny sizes:
ResNet-18 at 64 px for amp and dist, ResNet-50 at 64 px, batch 2, for bench.
"""
import argparse
import importlib
import os
import os.path as osp
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from types import SimpleNamespace

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path[:0] = [p for p in (REPO, osp.join(REPO, 'tools', 'analysis_tools')) if p not in sys.path]
STAGES = ('env', 'prroi', 'amp', 'sync', 'augment', 'bench', 'dist')
CROSSCL_CONFIG = 'configs/crosscl_r50fpn_200e_in1k.py'
TINY_CONFIG = 'tests/configs/crosscl_r18_tiny.py'

# mmcv's PrRoIPool launchers (mmcv/ops/csrc/pytorch/cuda/prroi_pool_cuda.cu in
# the sdist), bound under the names and arguments of mmcv._ext, so that
# mmcv.ops.PrRoIPoolFunction can call them as it calls mmcv's own build.
PRROI_BINDING = r'''
#include <torch/extension.h>
void PrROIPoolForwardCUDAKernelLauncher(at::Tensor input, at::Tensor rois, at::Tensor output,
                                        int pooled_height, int pooled_width, float spatial_scale);
void PrROIPoolBackwardCUDAKernelLauncher(at::Tensor grad_output, at::Tensor rois,
                                         at::Tensor grad_input, int pooled_height,
                                         int pooled_width, float spatial_scale);
void PrROIPoolCoorBackwardCUDAKernelLauncher(at::Tensor output, at::Tensor grad_output,
                                             at::Tensor input, at::Tensor rois,
                                             at::Tensor grad_rois, int pooled_height,
                                             int pooled_width, float spatial_scale);
PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("prroi_pool_forward", &PrROIPoolForwardCUDAKernelLauncher, py::arg("input"),
        py::arg("rois"), py::arg("output"), py::arg("pooled_height"), py::arg("pooled_width"),
        py::arg("spatial_scale"));
  m.def("prroi_pool_backward", &PrROIPoolBackwardCUDAKernelLauncher, py::arg("grad_output"),
        py::arg("rois"), py::arg("grad_input"), py::arg("pooled_height"),
        py::arg("pooled_width"), py::arg("spatial_scale"));
  m.def("prroi_pool_coor_backward", &PrROIPoolCoorBackwardCUDAKernelLauncher,
        py::arg("output"), py::arg("grad_output"), py::arg("input"), py::arg("rois"),
        py::arg("grad_rois"), py::arg("pooled_height"), py::arg("pooled_width"),
        py::arg("spatial_scale"));
}
'''


def say(msg=''):
    print(msg, flush=True)


# ---------------------------------------------------------------- building


def build_prroi_ext(mmcv_src: str, build_dir: str):
    """Compile mmcv's PrRoIPool CUDA kernels alone (about a minute) and import them."""
    from torch.utils.cpp_extension import load
    os.makedirs(build_dir, exist_ok=True)
    binding = osp.join(build_dir, 'prroi_pool_binding.cpp')
    with open(binding, 'w') as f:
        f.write(PRROI_BINDING)
    csrc = osp.join(mmcv_src, 'mmcv', 'ops', 'csrc')
    return load(name='mmcv_prroi_pool_cuda',
                sources=[binding, osp.join(csrc, 'pytorch', 'cuda', 'prroi_pool_cuda.cu')],
                extra_include_paths=[osp.join(csrc, 'common'), osp.join(csrc, 'common', 'cuda')],
                extra_cflags=['-O3'], extra_cuda_cflags=['-O3'], build_directory=build_dir,
                verbose=True)


HUE_SHIFT = 'np.uint8(hue_factor * 255)'
HUE_SHIFT_WRAPPED = 'np.uint8(int(hue_factor * 255) % 256)'


def patch_adjust_hue_for_numpy2(mmcv_src: str) -> int:
    """mmcv 2.0.1's ``adjust_hue`` shifts hue by ``np.uint8(hue_factor * 255)``,
    which numpy 1 wraps for a negative factor and numpy 2 refuses
    (``OverflowError: Python integer -5 out of bounds for uint8``; every
    MoCo v2 pipeline with hue jitter, measured on the GPU machine's numpy 2.5).
    The modulo gives numpy 1's value for every factor in [-0.5, 0.5]. Returns
    the number of places patched in the unpacked sdist."""
    path = osp.join(mmcv_src, 'mmcv', 'image', 'photometric.py')
    with open(path) as f:
        text = f.read()
    count = text.count(HUE_SHIFT)
    with open(path, 'w') as f:
        f.write(text.replace(HUE_SHIFT, HUE_SHIFT_WRAPPED))
    return count


def build_mmcv_cpu_ops(mmcv_src: str) -> None:
    """Build mmcv's ops for the CPU in place (``MAX_JOBS`` parallel), with the
    C++ standard this torch needs (tools/install/build_mmcv.py's fix)."""
    import torch
    sys.path.insert(0, osp.join(REPO, 'tools', 'install'))
    from build_mmcv import patch_cxx_standard, required_cxx_standard
    cxx = required_cxx_standard(osp.join(osp.dirname(torch.__file__), 'include'))
    if cxx > 14:
        patch_cxx_standard(osp.join(mmcv_src, 'setup.py'), cxx)
    import numpy
    if int(numpy.__version__.split('.')[0]) >= 2:
        patch_adjust_hue_for_numpy2(mmcv_src)
    # mmcv's setup.py compiles every CUDA op whenever it sees a GPU; hiding the
    # GPU from the build keeps it to the CPU ops (PrRoIPool's kernel is built apart).
    env = dict(os.environ, MMCV_WITH_OPS='1', FORCE_CUDA='0', CUDA_VISIBLE_DEVICES='',
               MAX_JOBS=os.environ.get('MAX_JOBS', str(os.cpu_count())))
    subprocess.run([sys.executable, 'setup.py', 'build_ext', '--inplace'], cwd=mmcv_src, env=env,
                   check=True)


# ---------------------------------------------------------------- stages


def stage_env(args):
    import torch
    say(f'python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs')
    say(f'torch {torch.__version__}, CUDA {torch.version.cuda}, '
        f'cuDNN {torch.backends.cudnn.version()}, float32 matmul precision '
        f'{torch.get_float32_matmul_precision()}, cuDNN TF32 {torch.backends.cudnn.allow_tf32}')
    if args.device == 'cuda':
        props = torch.cuda.get_device_properties(0)
        say(f'device: {props.name}, compute capability {props.major}.{props.minor}, '
            f'{props.total_memory / 2 ** 30:.1f} GiB, {props.multi_processor_count} SMs')
        for cmd in (['nvidia-smi', '--query-gpu=driver_version', '--format=csv,noheader'],
                    ['nvcc', '--version']):
            if shutil.which(cmd[0]):
                out = subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
                say(f'{cmd[0]}: {out.splitlines()[-1] if out else "?"}')
    else:
        say('device: CPU (no CUDA)')
    for name in ('numpy', 'cv2', 'mmengine', 'mmcv', 'mmdet', 'mmselfsup', 'mmcls', 'mmpretrain',
                 'pycocotools', 'crosscl_mm'):
        try:
            module = importlib.import_module(name)
            say(f'{name} {getattr(module, "__version__", "")} '
                f'({osp.dirname(module.__file__)})')
        except ImportError as e:
            say(f'{name}: not importable ({e})')
    try:
        from mmcv.ops import nms  # noqa: F401
        say('mmcv compiled ops: importable')
    except Exception as e:  # noqa: BLE001
        say(f'mmcv compiled ops: NOT importable ({e})')


def crosscl_windows(size: int, count: int, seed: int = 0):
    """CrossCL's P4/P3 windows (query and mapped key boxes, ``(count, 72, 4)``)
    drawn by its own pipeline from the sample photos at view size ``size``."""
    import torch
    from mmengine.config import Config
    from mmengine.dataset import Compose
    from mmengine.registry import TRANSFORMS, DefaultScope
    from crosscl_mm.utils.sample_photos import skimage_photo_paths
    cfg = Config.fromfile(osp.join(REPO, CROSSCL_CONFIG))
    steps = []
    for t in cfg.train_dataloader.dataset.pipeline:
        steps.append(dict(t, size=size) if t.type == 'PairedRandomResizedCrop' else t)
        if t.type == 'SlidingWindowRegions':
            break
    with DefaultScope.overwrite_default_scope('crosscl_mm'):
        pipeline = Compose([TRANSFORMS.build(t) for t in steps])
    torch.manual_seed(seed)
    paths = skimage_photo_paths()
    boxes = []
    for i in range(count):
        regions = pipeline(dict(img_path=paths[i % len(paths)]))['regions_p4']
        boxes.append(torch.cat([torch.from_numpy(regions['query_boxes']),
                                torch.from_numpy(regions['key_boxes'])]))
    return torch.stack(boxes)


def mmcv_prroi_pool(ext):
    """mmcv's own ``PrRoIPoolFunction``, calling the CUDA kernels in ``ext``."""
    # mmcv.ops re-exports the function prroi_pool under the module's name, so
    # `import mmcv.ops.prroi_pool as m` binds the function; the module is in sys.modules.
    mmcv_prroi = importlib.import_module('mmcv.ops.prroi_pool')
    mmcv_prroi.ext_module = ext  # mmcv's _ext here holds CPU ops only
    return mmcv_prroi.prroi_pool


def op_ms(fn, device: str, reps: int = 20) -> float:
    """Mean time of ``fn`` in ms after 3 warm-up calls (CUDA events on a GPU)."""
    import torch
    for _ in range(3):
        fn()
    if device != 'cuda':
        start = time.perf_counter()
        for _ in range(reps):
            fn()
        return (time.perf_counter() - start) / reps * 1000
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(reps):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / reps


def prroi_cases(dry_run: bool):
    """(name, map stride, view size, boxes ``(N, K, 4)``): random boxes, partly
    outside the view, then CrossCL's windows at its three training sizes."""
    import torch
    g = torch.Generator().manual_seed(0)
    images = 2 if dry_run else 16
    cases = []
    for stride in (8, 16):
        size = 224
        corner = torch.rand(images, 72, 2, generator=g) * 1.5 * size - 0.25 * size
        wh = torch.rand(images, 72, 2, generator=g) * 0.5 * size + 1
        cases.append((f'random boxes {size}px', stride, size, torch.cat([corner, corner + wh], -1)))
    for size in (224, 384, 480):
        windows = crosscl_windows(size, 2 if dry_run else 64)
        for stride in (8, 16):
            cases.append((f'CrossCL windows {size}px', stride, size, windows))
    return cases


def stage_prroi(args):
    import torch
    from crosscl_mm.models.utils import prroi_pool_1x1
    device, channels = args.device, 16 if args.dry_run else 256
    theirs = None
    if device == 'cuda':
        if not args.prroi_build or not args.mmcv_src:
            raise RuntimeError('--mmcv-src and --prroi-build are needed (gpu_check.sh passes them)')
        theirs = mmcv_prroi_pool(build_prroi_ext(args.mmcv_src, args.prroi_build))
        torch.backends.cuda.matmul.allow_tf32 = False  # float32 means float32 here
    else:
        say('mmcv side SKIPPED: mmcv.ops.PrRoIPool has CUDA kernels only and this run has no '
            'CUDA (on the CPU, tests/test_prroi_pool.py checks prroi_pool_1x1 against dense '
            'numerical integration and gradcheck); timing ours alone')
    say('| case | map | boxes | fwd max abs | fwd rel | bwd max abs | bwd rel | '
        'ours fwd+bwd (ms) | mmcv fwd+bwd (ms) |')
    say('| --- | --- | --- | --- | --- | --- | --- | --- | --- |')
    g = torch.Generator().manual_seed(1)
    worst = 0.0
    for name, stride, size, boxes in prroi_cases(args.dry_run):
        n, k = boxes.shape[:2]
        side = size // stride
        feats = torch.randn(n, channels, side, side, generator=g).to(device)
        grad = torch.randn(n * k, channels, generator=g).to(device)
        boxes = boxes.to(device)
        rois = torch.cat([torch.arange(n, device=device).repeat_interleave(k)[:, None].float(),
                          boxes.reshape(-1, 4)], dim=1)
        scale = 1.0 / stride
        ops = dict(ours=lambda f: prroi_pool_1x1(f, boxes, scale).reshape(n * k, -1))
        if theirs is not None:
            ops['mmcv'] = lambda f: theirs(f, rois, (1, 1), scale).reshape(n * k, -1)
        results, times = {}, {}
        for label, op in ops.items():
            f = feats.clone().requires_grad_(True)
            out = op(f)
            out.backward(grad)
            results[label] = (out.detach(), f.grad)
            f = feats.clone().requires_grad_(True)
            times[label] = op_ms(lambda: op(f).backward(grad), device)
        cells = ['n/a'] * 4
        if theirs is not None:
            errors = []
            for i in range(2):
                diff = (results['ours'][i] - results['mmcv'][i]).abs().max().item()
                errors += [diff, diff / results['mmcv'][i].abs().max().item()]
            worst = max(worst, errors[1], errors[3])
            cells = [f'{e:.2e}' for e in errors]
        say(f'| {name} | P{3 if stride == 8 else 4} ({side}x{side}) | {n}x{k} | '
            + ' | '.join(cells) + f' | {times["ours"]:.3f} | '
            + (f'{times["mmcv"]:.3f} |' if 'mmcv' in times else 'n/a |'))
    if theirs is not None:
        say(f'largest relative error {worst:.2e} (goal <= 1e-5): '
            f'{"met" if worst <= 1e-5 else "NOT met"}; rel = max |ours - mmcv| / max |mmcv| '
            f'over the output (forward) or the feature gradient (backward); {channels} channels')


class OpDtypes:
    """Records the dtypes of the first tensor argument of chosen aten ops."""

    def __init__(self, names):
        from torch.utils._python_dispatch import TorchDispatchMode
        import torch
        names = set(names)
        seen = self.seen = {}

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                name = func.overloadpacket.__name__
                if name in names:
                    first = next(a for a in args if isinstance(a, torch.Tensor))
                    seen.setdefault(name, []).append(str(first.dtype).replace('torch.', ''))
                return func(*args, **(kwargs or {}))

        self.mode = Mode()

    def __enter__(self):
        self.mode.__enter__()
        return self

    def __exit__(self, *exc):
        return self.mode.__exit__(*exc)


def crosscl_model_and_batch(device, dry_run, batch_size=None):
    from benchmark_pretrain import ALGORITHMS, Algorithm, Built, our_config
    if dry_run:
        ALGORITHMS.setdefault('crosscl_tiny', Algorithm(our_config(TINY_CONFIG)))
        return Built('crosscl_tiny', device, batch_size or 2, 64)
    return Built('crosscl', device, batch_size or 32, 224)


def stage_amp(args):
    import copy
    import torch
    from mmengine.optim import OptimWrapper
    from crosscl_mm.engine.optimizers import MixedPrecisionOptimWrapper
    built = crosscl_model_and_batch(args.device, args.dry_run)
    say(f'CrossCL {"ResNet-18 at 64 px, batch 2" if args.dry_run else "ResNet-50 at 224 px, batch 32"}')
    runs = {}
    for label, wrapper_type in (('fp32', OptimWrapper), ('amp', MixedPrecisionOptimWrapper)):
        model = copy.deepcopy(built.model)  # same weights, queue and momentum encoder
        wrapper = wrapper_type(optimizer=torch.optim.SGD(model.parameters(), lr=0.0))
        with OpDtypes(['bmm', '_log_softmax', 'convolution']) as dtypes:
            with wrapper.optim_context(model):
                data = model.data_preprocessor(built.batch, True)
                losses = model(**data, mode='loss')
            total = sum(v for k, v in losses.items() if k.startswith('loss'))
            wrapper.backward(total)
        grads = torch.cat([p.grad.flatten().float() for p in model.parameters()
                           if p.grad is not None])
        runs[label] = dict(losses={k: v.item() for k, v in losses.items() if k.startswith('loss')},
                           grads=grads, dtypes=dtypes.seen, wrapper=wrapper)
    amp = runs['amp']
    say(f'AMP: {amp["wrapper"].cast_dtype}, loss scaling '
        f'{"on" if amp["wrapper"].loss_scaler is not None else "off"}')
    say('| term | fp32 | amp | abs diff | rel diff |')
    say('| --- | --- | --- | --- | --- |')
    for name, ref in runs['fp32']['losses'].items():
        value = amp['losses'][name]
        say(f'| {name} | {ref:.5f} | {value:.5f} | {abs(value - ref):.2e} | '
            f'{abs(value - ref) / abs(ref):.2e} |')
    g32, g16 = runs['fp32']['grads'], amp['grads']
    cosine = torch.nn.functional.cosine_similarity(g32, g16, dim=0).item()
    say(f'gradients: {int((~torch.isfinite(g16)).sum())} non-finite of {g16.numel()} under AMP; '
        f'cosine similarity with float32 {cosine:.5f}; relative norm of the difference '
        f'{((g16 - g32).norm() / g32.norm()).item():.2e}')
    for op, label in (('convolution', 'convolutions'), ('bmm', 'pooling contractions (bmm)'),
                      ('_log_softmax', "InfoNCE's log_softmax")):
        counts = {d: amp['dtypes'].get(op, []).count(d) for d in sorted(set(amp['dtypes'].get(op, [])))}
        say(f'under AMP, {label} ran in: {counts}')


def stage_sync(args):
    if args.device != 'cuda':
        say('SKIPPED: torch.cuda.set_sync_debug_mode needs CUDA. On the CPU, '
            'tests/test_host_sync.py reviews a training iteration for host synchronisations.')
        return
    import collections
    import warnings
    import torch
    from crosscl_mm.engine.hooks import FiniteLossHook
    built = crosscl_model_and_batch('cuda', False, 64)
    runner = SimpleNamespace(iter=0, epoch=0, hooks=[], work_dir='.')
    hook = FiniteLossHook(interval=50)
    for precision in ('fp32', 'amp'):
        wrapper = built.optim_wrapper(precision)
        for i in range(3):
            runner.iter = i
            if i == 2:  # the third step, warm: iteration 3 is not a read-back one
                torch.cuda.synchronize()
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter('always')
                    torch.cuda.set_sync_debug_mode('warn')
                    try:
                        log_vars = built.model.train_step(built.batch, wrapper)
                        hook.after_train_iter(runner, i, outputs=log_vars)
                    finally:
                        torch.cuda.set_sync_debug_mode('default')
            else:
                log_vars = built.model.train_step(built.batch, wrapper)
                hook.after_train_iter(runner, i, outputs=log_vars)
        where = collections.Counter(
            f'{osp.relpath(w.filename, REPO) if w.filename.startswith(REPO) else w.filename}:{w.lineno}'
            for w in caught if 'synchroniz' in str(w.message))
        ours = sum(n for loc, n in where.items() if loc.startswith('crosscl_mm'))
        say(f'{precision}: {sum(where.values())} synchronising operations in one train_step + '
            f'FiniteLossHook, {ours} from crosscl_mm')
        for loc, n in where.most_common():
            say(f'  {n:4d}  {loc}')


def stage_augment(args):
    import color_augment_check
    from benchmark_pretrain import data_only, format_data_only
    if args.dry_run:
        ok = color_augment_check.report(args.device, batch_sizes=(4,), size=64, log=say)
        results = data_only(['crosscl', 'detco'], args.device, samples=4, rounds=2,
                            batch_size=2, reps=1, log=say)
    else:
        ok = color_augment_check.report(args.device, batch_sizes=(64, 128, 256), size=224,
                                        log=say)
        results = data_only(['crosscl', 'detco'], args.device, samples=96, rounds=4,
                            batch_size=256, log=say)
    say()
    say(format_data_only(results))
    if not ok:
        raise RuntimeError('a colour augmentation check failed (see above)')


def stage_bench(args):
    from benchmark_pretrain import format_report, run_benchmark, ratio_summary
    if args.dry_run:
        sizes = dict(batch_size=2, img_size=64, rounds=2, iters_per_round=1,
                     pipeline_workers_n=2, pipeline_samples=8, memory=False)
    else:
        sizes = dict(batch_size=64, img_size=224, rounds=5, iters_per_round=3,
                     pipeline_workers_n=16, pipeline_samples=480)
    results = run_benchmark(['crosscl', 'mocov2', 'densecl'], args.device,
                            precisions=('fp32', 'amp'), log=say, **sizes)
    say(format_report(results))
    say()
    for p in ('fp32', 'amp') if not args.dry_run else ():
        ratio = ratio_summary(results, 'crosscl', p)['median']
        peak = results['peak_mb'].get(f'crosscl/{p}')
        ref_peak = results['peak_mb'].get(f'mocov2/{p}')
        ips = results['batch_size'] / statistics.median(results['step_s'][f'crosscl/{p}'])
        say(f'target {p}: CrossCL step <= 1.10 x MoCo v2: {ratio:.2f} '
            f'({"met" if ratio <= 1.10 else "NOT met"})'
            + (f'; peak memory <= 1.3 x MoCo v2: {peak / ref_peak:.2f} '
               f'({"met" if peak / ref_peak <= 1.3 else "NOT met"})' if peak and ref_peak else '')
            + (f'; CrossCL {ips:.0f} img/s (AMP target >= 2500: '
               f'{"met" if ips >= 2500 else "NOT met"})' if p == 'amp' else ''))
    if args.dry_run:
        say('targets: not evaluated in a dry run (tiny sizes on the CPU)')
    say()
    say('channels_last (AMP, the same sizes, a second build):')
    channels_last = run_benchmark(['crosscl', 'mocov2'], args.device, precisions=('amp',),
                                  channels_last=True, log=say,
                                  **dict(sizes, pipeline_samples=0, rounds=3))
    say(format_report(channels_last))


def stage_dist(args):
    import socket
    import torch  # noqa: F401
    from crosscl_mm.utils.sample_photos import export_photo_folder
    work = args.work_dir
    photos = osp.join(work, 'photos')
    export_photo_folder(photos, classes=1)
    n_photos = sum(len(files) for _, _, files in os.walk(photos))
    if args.dry_run:
        config, batch = TINY_CONFIG, 8
        extra = ['optim_wrapper.type=MixedPrecisionOptimWrapper', 'train_cfg.max_epochs=1']
    else:
        config, batch = CROSSCL_CONFIG.replace('.py', '_amp.py'), 8
        extra = ['train_cfg.max_epochs=2', 'default_hooks.checkpoint.interval=2']
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    work_dir = osp.join(work, 'dist_train')
    cmd = ['bash', 'tools/dist_train.sh', config, '1', '--work-dir', work_dir, '--cfg-options',
           f'train_dataloader.dataset.data_root={photos}', f'train_dataloader.batch_size={batch}',
           'train_dataloader.num_workers=4', 'default_hooks.logger.interval=1', *extra]
    say('$ ' + ' '.join(cmd) + f'   ({n_photos} photos, {n_photos // batch} iterations per epoch)')
    env = dict(os.environ, PORT=str(port), PYTHON=sys.executable, PYTHONUNBUFFERED='1')
    start = time.time()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    say(f'exit status {proc.returncode} after {time.time() - start:.0f} s')
    log = proc.stdout + proc.stderr
    # The config shows backend='nccl'; crosscl_mm.compat switches to gloo only without CUDA.
    keep = ('Distributed launcher', 'Distributed training', 'GPU number', "backend='",
            'MixedPrecisionOptimWrapper:', 'Epoch(train)', 'Saving checkpoint', 'Traceback',
            'Error:')
    for line in log.splitlines():
        if any(k in line for k in keep):
            say('  ' + line.strip()[:500])
    checkpoints = sorted(f for f in os.listdir(work_dir) if f.endswith('.pth')) \
        if osp.isdir(work_dir) else []
    say(f'checkpoints: {checkpoints}')
    if proc.returncode != 0:
        say(log[-3000:])
        raise RuntimeError('dist_train.sh failed')


# ---------------------------------------------------------------- main


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', choices=['cuda', 'cpu'])
    parser.add_argument('--dry-run', action='store_true', help='tiny sizes, for a CPU check')
    parser.add_argument('--stages', nargs='+', choices=STAGES, default=list(STAGES))
    parser.add_argument('--mmcv-src', help="the unpacked mmcv sdist (PrRoIPool's CUDA sources)")
    parser.add_argument('--prroi-build', help='build folder of the PrRoIPool extension')
    parser.add_argument('--work-dir', help='scratch folder (default: a temporary one)')
    parser.add_argument('--build-prroi-ext', nargs=2, metavar=('MMCV_SRC', 'BUILD_DIR'))
    parser.add_argument('--build-mmcv-cpu-ops', metavar='MMCV_SRC')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.build_prroi_ext:
        build_prroi_ext(*args.build_prroi_ext)
        return 0
    if args.build_mmcv_cpu_ops:
        build_mmcv_cpu_ops(args.build_mmcv_cpu_ops)
        return 0
    import torch
    import crosscl_mm  # noqa: F401
    from benchmark_pretrain import quiet_mmengine
    quiet_mmengine()
    args.device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: torch sees no CUDA device')
    scratch = None
    if not args.work_dir:
        scratch = args.work_dir = tempfile.mkdtemp(prefix='gpu_check_')
    status = {}
    start_all = time.time()
    for stage in args.stages:
        say(f'\n== {stage} ==')
        start = time.time()
        try:
            globals()[f'stage_{stage}'](args)
            status[stage] = 'ok'
        except Exception:  # noqa: BLE001  (report, then run the other stages)
            traceback.print_exc(file=sys.stdout)
            status[stage] = 'FAILED'
        say(f'[{stage}: {status[stage]}, {time.time() - start:.1f} s]')
    say(f'\n== summary ({args.device}{", dry run" if args.dry_run else ""}, '
        f'{time.time() - start_all:.0f} s) ==')
    say(', '.join(f'{s}: {v}' for s, v in status.items()))
    if scratch:
        shutil.rmtree(scratch, ignore_errors=True)
    return 1 if 'FAILED' in status.values() else 0


if __name__ == '__main__':
    sys.exit(main())
