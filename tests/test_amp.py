"""Mixed precision: the `_amp` configs, the optimizer wrapper's choice of
dtype, and CrossCL under bfloat16 autocast on the CPU against float32
(SoCo and DetCo: tests/test_amp_soco_detco.py)."""
import copy
import glob
import random
import os.path as osp

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from conftest import REPO, TEST_CONFIGS

AMP_CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', '*_amp.py')))
TERMS = ('loss_global', 'loss_p4', 'loss_p3', 'loss_p4_p3', 'loss_p3_p4')


def test_every_amp_config_is_its_base_with_the_mixed_precision_wrapper():
    from mmengine.config import Config
    names = {osp.basename(p)[:-len('_amp.py')] for p in AMP_CONFIGS}
    assert names >= {'crosscl_r50fpn_200e_in1k', 'crosscl_r50fpn_200e_in1k_mst',
                     'crosscl_r50fpn_400e_in1k', 'crosscl_r50fpn_400e_in1k_mst',
                     'crosscl_r50fpn_800e_coco', 'crosscl_r50fpn_800e_coco_mst',
                     'soco_r50fpn_100e_in1k', 'soco_r50fpn_400e_in1k',
                     'soco-star_r50fpn_400e_in1k', 'detco_r50_200e_in1k', 'detco_r50_800e_in1k',
                     'regioncl-m_r50_200e_in1k', 'soco_r50c4_100e_in1k',
                     'soco_r50c4_400e_in1k'}
    for path in AMP_CONFIGS:
        amp = Config.fromfile(path).to_dict()
        base = Config.fromfile(path.replace('_amp.py', '.py')).to_dict()
        wrapper, base_wrapper = amp.pop('optim_wrapper'), base.pop('optim_wrapper')
        assert wrapper == dict(base_wrapper, type='MixedPrecisionOptimWrapper', dtype='auto',
                               loss_scale='dynamic'), path
        assert amp == base, path  # nothing else changes


def test_auto_dtype_is_bfloat16_from_ampere_on_and_on_the_cpu():
    from crosscl_mm.engine.optimizers import autocast_dtype
    assert autocast_dtype('cuda', (9, 0)) is torch.bfloat16  # H100, H200
    assert autocast_dtype('cuda', (8, 0)) is torch.bfloat16  # A100
    assert autocast_dtype('cuda', (7, 5)) is torch.float16   # T4
    assert autocast_dtype('cuda', (7, 0)) is torch.float16   # V100
    assert autocast_dtype('cpu') is torch.bfloat16
    with pytest.raises(ValueError, match="'auto' knows devices"):
        autocast_dtype('mps')


@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU choice of the wrapper')
def test_wrapper_from_the_amp_config_on_the_cpu():
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope
    from crosscl_mm.engine.optimizers import MixedPrecisionOptimWrapper
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'crosscl_r50fpn_200e_in1k_amp.py'))
    model = torch.nn.Linear(3, 2)
    with DefaultScope.overwrite_default_scope('crosscl_mm'):
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    assert type(wrapper) is MixedPrecisionOptimWrapper
    assert wrapper.cast_dtype is torch.bfloat16 and wrapper.loss_scaler is None
    assert wrapper.optimizer.defaults['lr'] == 0.03
    state = wrapper.state_dict()
    assert 'loss_scaler' not in state
    # A float16 run's checkpoint resumes here: its scaler state has no use and is dropped.
    wrapper.load_state_dict(dict(state, loss_scaler={'scale': 65536.0}))
    with pytest.raises(ValueError, match='needs CUDA'):
        MixedPrecisionOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                                   dtype='float16')


class FirstTensorDtypes(TorchDispatchMode):
    """The dtype of the first tensor argument of every call of the named aten ops."""

    def __init__(self, names):
        super().__init__()
        self.names, self.seen = set(names), {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name in self.names:
            first = next(a for a in args if isinstance(a, torch.Tensor))
            self.seen.setdefault(name, set()).add(first.dtype)
        return func(*args, **(kwargs or {}))


def test_crosscl_under_bfloat16_autocast_keeps_float32_sums_and_matches_float32():
    """One real batch through CrossCL (ResNet-18 at 64 px) in float32 and in the
    AMP wrapper's bfloat16 autocast, from the same state: the convolutions run
    in bfloat16, the pooling contractions and the loss's log-softmax in
    float32; the five losses agree within 0.03 (0.5-2% of their 1.7-5.7); the
    gradients are finite, and those of the regional terms agree with float32
    about as well as MoCo v2's global term's do (bfloat16 at initialisation,
    batch 4: measured cosine 0.945 regional, 0.952 global; losses within 0.007)."""
    from mmengine.config import Config
    from mmengine.dataset import Compose, pseudo_collate
    from mmengine.optim import OptimWrapper
    from mmengine.registry import MODELS, TRANSFORMS, DefaultScope
    from crosscl_mm.engine.optimizers import MixedPrecisionOptimWrapper
    from crosscl_mm.utils.sample_photos import skimage_photo_paths

    cfg = Config.fromfile(osp.join(TEST_CONFIGS, 'crosscl_r18_tiny.py'))
    torch.manual_seed(0)
    random.seed(0)  # the colour augmentation draws from Python's generator
    with DefaultScope.overwrite_default_scope('crosscl_mm'):
        pipeline = Compose([TRANSFORMS.build(t) for t in cfg.train_dataloader.dataset.pipeline])
        model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    paths = skimage_photo_paths(['astronaut.png', 'chelsea.png', 'coffee.png', 'rocket.jpg'])
    batch = pseudo_collate([pipeline(dict(img_path=p)) for p in paths])

    runs = {}
    for label, wrapper_type in (('fp32', OptimWrapper), ('amp', MixedPrecisionOptimWrapper)):
        copy_ = copy.deepcopy(model)  # the same weights, queue and momentum encoder
        params = [p for p in copy_.parameters() if p.requires_grad]
        wrapper = wrapper_type(optimizer=torch.optim.SGD(params, lr=0.03))
        with FirstTensorDtypes(['convolution', 'bmm', '_log_softmax']) as dtypes:
            with wrapper.optim_context(copy_):
                data = copy_.data_preprocessor(batch, True)
                losses = copy_(**data, mode='loss')
            global_grads = torch.autograd.grad(losses['loss_global'], params, retain_graph=True,
                                               allow_unused=True)
            wrapper.backward(sum(losses[t] for t in TERMS[1:]))
        runs[label] = dict(losses=losses, dtypes=dtypes.seen,
                           grads=dict(global_=global_grads, regional=[p.grad for p in params]))

    fp32, amp = runs['fp32'], runs['amp']
    assert fp32['dtypes'] == {'convolution': {torch.float32}, 'bmm': {torch.float32},
                              '_log_softmax': {torch.float32}}
    assert amp['dtypes']['convolution'] == {torch.bfloat16}  # autocast is on
    assert amp['dtypes']['bmm'] == {torch.float32}            # region pooling sums in float32
    assert amp['dtypes']['_log_softmax'] == {torch.float32}   # InfoNCE on float32 logits
    for term in TERMS:
        value, ref = amp['losses'][term], fp32['losses'][term]
        assert value.dtype == torch.float32 and torch.isfinite(value)
        assert abs(value.item() - ref.item()) < 0.03, (term, value, ref)
    cosine = {}
    for group in ('global_', 'regional'):
        pairs = [(a, b) for a, b in zip(amp['grads'][group], fp32['grads'][group])
                 if b is not None]
        low = torch.cat([a.flatten() for a, _ in pairs])
        assert low.dtype == torch.float32 and torch.isfinite(low).all()
        cosine[group] = torch.nn.functional.cosine_similarity(
            low, torch.cat([b.flatten() for _, b in pairs]), dim=0).item()
    assert cosine['global_'] > 0.85
    assert cosine['regional'] > cosine['global_'] - 0.02, cosine


@pytest.mark.parametrize('config', [osp.join(TEST_CONFIGS, 'crosscl_r18_tiny.py'), 'DENSECL'])
def test_train_py_amp_flag_builds_the_mixed_precision_wrapper(config, tmp_path):
    """`tools/train.py CONFIG --amp` turns the config's optimizer wrapper into
    MixedPrecisionOptimWrapper (bfloat16 on this CPU), in our scope and in the
    package's (mmselfsup's or mmpretrain's own DenseCL config)."""
    import sys

    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope

    from conftest import DENSECL_TINY
    sys.path.insert(0, osp.join(REPO, 'tools'))
    import train  # tools/train.py

    config = DENSECL_TINY if config == 'DENSECL' else config
    options = ['--work-dir', str(tmp_path), '--cfg-options',
               f'train_dataloader.dataset.data_root={tmp_path}']
    cfg = train.config_from_args(train.parse_args([config, '--amp', *options]))
    assert cfg.optim_wrapper.type == 'crosscl_mm.MixedPrecisionOptimWrapper'
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        wrapper = build_optim_wrapper(torch.nn.Linear(2, 2), cfg.optim_wrapper)
    assert type(wrapper).__name__ == 'MixedPrecisionOptimWrapper'
    assert wrapper.cast_dtype == torch.bfloat16
    assert train.config_from_args(train.parse_args([config, *options])).optim_wrapper.type != \
        'crosscl_mm.MixedPrecisionOptimWrapper'
