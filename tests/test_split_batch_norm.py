"""Shuffle BN in one process: the split-batch BatchNorm of MoCo's one-GPU
demo against BatchNorm written from its definition, against two processes
with per-rank BN on the same data and permutation, and the warning that
shuffle BN does nothing in one process without it."""
import os.path as osp

import pytest
import torch

import crosscl_mm  # noqa: F401
from crosscl_mm.models.utils import SplitBatchNorm2d
from crosscl_mm.models.utils import split_batch_norm as split_module
from crosscl_mm.registry import MODELS

from conftest import run_snippet_on_two_ranks
from test_detco_model import LEVELS, make_inputs, tiny_cfg

# A narrow DetCo (ResNet-18 at base width 8) with its BN in training mode, as in training.
NARROW = dict(backbone=dict(type='mmdet.ResNet', depth=18, base_channels=8,
                            out_indices=(0, 1, 2, 3), norm_cfg=dict(type='BN'), norm_eval=False,
                            zero_init_residual=False),
              level_channels=(8, 16, 32, 64), global_hid_channels=(16,) * 4,
              local_hid_channels=(16,) * 4, queue_len=4)


def build(**overrides):
    torch.manual_seed(0)  # the same weights in every process
    return MODELS.build(tiny_cfg(**dict(NARROW, **overrides))).train()


def group_bn(x, weight, bias, eps):
    """BatchNorm in training mode of one group: biased variance to normalise."""
    mean = x.mean((0, 2, 3), keepdim=True)
    var = x.var((0, 2, 3), unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)


def test_split_batch_norm_normalises_each_contiguous_group_on_its_own():
    torch.manual_seed(0)
    bn = SplitBatchNorm2d(3, num_splits=3, momentum=0.1)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1, 1)
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    start_mean, start_var = bn.running_mean.clone(), bn.running_var.clone()
    # Three groups of two samples with very different statistics.
    x = torch.cat([torch.randn(2, 3, 5, 4) * s + o for s, o in ((1, 0), (3, 5), (0.5, -2))])
    x.requires_grad_(True)
    out = bn(x)
    expected = torch.cat([group_bn(g, bn.weight, bn.bias, bn.eps) for g in x.split(2)])
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    # Running statistics: each group's update from the same start, averaged.
    groups = x.detach().split(2)
    mean = torch.stack([0.9 * start_mean + 0.1 * g.mean((0, 2, 3)) for g in groups]).mean(0)
    var = torch.stack([0.9 * start_var + 0.1 * g.var((0, 2, 3), unbiased=True)
                       for g in groups]).mean(0)
    torch.testing.assert_close(bn.running_mean, mean)
    torch.testing.assert_close(bn.running_var, var)
    assert int(bn.num_batches_tracked) == 1
    # Gradients reach the input and the affine parameters.
    out.square().sum().backward()
    assert x.grad.abs().sum() > 0 and bn.weight.grad.abs().sum() > 0
    # Eval mode: the running statistics, as any BatchNorm2d.
    bn.eval()
    plain = torch.nn.BatchNorm2d(3).eval()
    plain.load_state_dict(bn.state_dict())
    torch.testing.assert_close(bn(x.detach()), plain(x.detach()))
    with pytest.raises(ValueError, match='cannot be split into 4 equal groups'):
        SplitBatchNorm2d(3, num_splits=4).train()(x.detach())


def test_split_option_converts_both_encoders_and_keeps_the_state_dict_names():
    plain, split = build(), build(split_batch_bn=2)
    assert set(plain.state_dict()) == set(split.state_dict())
    for name, module in split.named_modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            assert isinstance(module, SplitBatchNorm2d) and module.num_splits == 2, name
    assert any(n.startswith('momentum_encoder.module.backbone') and
               isinstance(m, SplitBatchNorm2d) for n, m in split.named_modules())


def test_one_process_warns_once_without_split_batch_bn(monkeypatch):
    messages = []
    monkeypatch.setattr(split_module, 'print_log', lambda msg, **kw: messages.append(msg))
    monkeypatch.setattr(split_module, '_warned', set())
    inputs = make_inputs(4, seed=0, size=32, patch=16)
    model = build()
    for _ in range(2):
        model.loss([x.clone() for x in inputs])
    assert len(messages) == 1 and 'DetCo: one process, so shuffle BN is the identity' in \
        messages[0] and 'split_batch_bn' in messages[0]
    build(split_batch_bn=2).loss([x.clone() for x in inputs])
    build(shuffle_key_batches=False).loss([x.clone() for x in inputs])
    assert len(messages) == 1


TWO_RANKS = """
import sys, torch, torch.distributed as dist
sys.path.insert(0, {tests!r})
from test_split_batch_norm import build, make_inputs
dist.init_process_group('gloo')
rank = dist.get_rank()
model = build()  # per-rank BN
img_k, patches_k = make_inputs(4, seed=5, size=32, patch=16)[1::2]
torch.manual_seed(123)  # rank 0 draws the permutations, broadcast to rank 1
with torch.no_grad():
    keys = model._momentum_keys(img_k[2 * rank:2 * rank + 2], patches_k[2 * rank:2 * rank + 2])
torch.save(keys, {out!r} + f'.{{rank}}')
"""



def test_two_groups_in_one_process_give_the_keys_of_two_ranks(tmp_path, one_thread):
    """The momentum encoder's keys of 4 images: 2 processes with per-rank BN
    (2 images each) against one process with ``split_batch_bn=2``, same
    weights, data and permutations. Without the in-process shuffle or with
    the groups taken otherwise, the groups hold other images. One thread
    here, as in the ranks: BN over 2 images of a 1x1 res5 map amplifies the
    rounding of another summation order beyond the tolerance."""
    out = str(tmp_path / 'keys')
    run_snippet_on_two_ranks(TWO_RANKS.format(tests=osp.dirname(osp.abspath(__file__)), out=out))
    ranks = [torch.load(f'{out}.{r}', weights_only=True) for r in range(2)]

    img_k, patches_k = make_inputs(4, seed=5, size=32, patch=16)[1::2]

    def one_process(**overrides):
        model = build(**overrides)
        torch.manual_seed(123)
        with torch.no_grad():
            return model._momentum_keys(img_k, patches_k)

    split = one_process(split_batch_bn=2)
    plain = one_process()
    for kind in (0, 1):  # global keys, local keys
        for level in LEVELS:
            expected = torch.cat([ranks[r][kind][level] for r in range(2)])
            torch.testing.assert_close(split[kind][level], expected, rtol=1e-5, atol=1e-6,
                                       msg=f'{("global", "local")[kind]} {level}')
            # BN over the whole batch (shuffle BN as the identity) is another computation.
            assert (plain[kind][level] - expected).abs().max() > 1e-3


def test_crosscl_warns_in_one_process_and_takes_the_split_option(monkeypatch):
    import test_crosscl_model as crosscl
    messages = []
    monkeypatch.setattr(split_module, 'print_log', lambda msg, **kw: messages.append(msg))
    monkeypatch.setattr(split_module, '_warned', set())
    samples, inputs = crosscl.make_samples(4), crosscl.make_inputs(4)
    backbone = dict(crosscl.tiny_model_cfg()['backbone'], norm_eval=False)
    for split in (1, 2):
        torch.manual_seed(0)
        model = MODELS.build(crosscl.tiny_model_cfg(backbone=backbone, split_batch_bn=split))
        bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        assert bns and all(isinstance(m, SplitBatchNorm2d) == (split > 1) for m in bns)
        for _ in range(2):
            model.train().loss([x.clone() for x in inputs], samples)
    assert len(messages) == 1 and messages[0].startswith('CrossCL: one process')
