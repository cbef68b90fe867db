"""The detectron2 optimizer constructor gives each parameter the learning rate
and weight decay that detectron2's ``build_optimizer`` of the named release
gives it (the rules, written out by hand per parameter from
detectron2/solver/build.py and config/defaults.py at tags v0.3, v0.5, v0.6)."""
import pytest
import torch
from mmengine.optim import build_optim_wrapper
from torch import nn


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)                # weight, bias
        self.bn = nn.BatchNorm2d(4)                   # norm weight, norm bias
        self.gn = nn.GroupNorm(2, 4)                  # norm weight, norm bias
        self.fc = nn.Linear(4, 2)                     # weight, bias
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)
        self.tied = nn.Linear(4, 2)
        self.tied.weight = self.fc.weight             # tied: counted once


WD, WD_NORM = 2.5e-5, 0.0
# (parameter, decay) for a YAML with WEIGHT_DECAY 2.5e-5, WEIGHT_DECAY_NORM 0 and
# no WEIGHT_DECAY_BIAS:
EXPECTED = {
    # v0.3: norm first (weights and biases 0); other biases WEIGHT_DECAY_BIAS,
    # bound to 1e-4 when defaults.py loaded.
    '0.3': {'conv.weight': WD, 'conv.bias': 1e-4, 'bn.weight': 0.0, 'bn.bias': 0.0,
            'gn.weight': 0.0, 'gn.bias': 0.0, 'fc.weight': WD, 'fc.bias': 1e-4,
            'tied.bias': 1e-4},
    # v0.5: the bias override comes after the norm one: norm biases 1e-4 too.
    '0.5': {'conv.weight': WD, 'conv.bias': 1e-4, 'bn.weight': 0.0, 'bn.bias': 1e-4,
            'gn.weight': 0.0, 'gn.bias': 1e-4, 'fc.weight': WD, 'fc.bias': 1e-4,
            'tied.bias': 1e-4},
    # v0.6: WEIGHT_DECAY_BIAS None follows WEIGHT_DECAY; norms 0.
    '0.6': {'conv.weight': WD, 'conv.bias': WD, 'bn.weight': 0.0, 'bn.bias': 0.0,
            'gn.weight': 0.0, 'gn.bias': 0.0, 'fc.weight': WD, 'fc.bias': WD,
            'tied.bias': WD},
}


def decays_by_name(model, optimizer):
    names = {id(p): n for n, p in model.named_parameters()}  # a tied one by its first name
    out = {}
    for group in optimizer.param_groups:
        for p in group['params']:
            out.setdefault(names[id(p)], (group['lr'], group['weight_decay']))
    return out


def build(model, version, **paramwise):
    cfg = dict(optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=WD),
               constructor='crosscl_mm.Detectron2OptimWrapperConstructor',
               paramwise_cfg=dict(detectron2_version=version, weight_decay_norm=WD_NORM,
                                  **paramwise))
    return build_optim_wrapper(model, cfg).optimizer


@pytest.mark.parametrize('version', sorted(EXPECTED))
def test_each_parameter_gets_that_release_s_decay(version):
    model = Tiny()
    got = decays_by_name(model, build(model, f'v{version}'))
    assert {n: d for n, (lr, d) in got.items()} == EXPECTED[version]
    assert {lr for lr, _ in got.values()} == {0.02}
    # frozen parameters are not handed to the optimizer; the tied weight once
    assert sum(len(g['params']) for g in build(model, version).param_groups) == 9


def test_yaml_values_and_bias_lr_factor():
    model = Tiny()
    got = decays_by_name(model, build(model, '0.3', weight_decay_bias=0.0, bias_lr_factor=2.0))
    # v0.3 applies the bias factor to non-norm biases only
    assert got['conv.bias'] == (0.04, 0.0) and got['bn.bias'] == (0.02, 0.0)
    got = decays_by_name(model, build(model, '0.5', weight_decay_bias=0.0, bias_lr_factor=2.0))
    assert got['bn.bias'] == (0.04, 0.0) and got['bn.weight'] == (0.02, 0.0)


def test_one_sgd_step_applies_the_group_decay():
    model = Tiny()
    optimizer = build(model, '0.3')
    before = model.fc.bias.detach().clone()
    model.zero_grad()
    for p in model.parameters():
        if p.requires_grad:
            p.grad = torch.zeros_like(p)
    optimizer.step()
    # zero gradient: the step is the decay alone, lr * 1e-4 * value
    torch.testing.assert_close(model.fc.bias.detach(), before * (1 - 0.02 * 1e-4))


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError, match='detectron2_version'):
        build(Tiny(), '0.7')
    cfg = dict(optimizer=dict(type='SGD', lr=0.02, weight_decay=WD),
               constructor='crosscl_mm.Detectron2OptimWrapperConstructor',
               paramwise_cfg=dict(norm_decay_mult=0.0))
    with pytest.raises(ValueError, match='detectron2_version required'):
        build_optim_wrapper(Tiny(), cfg)
