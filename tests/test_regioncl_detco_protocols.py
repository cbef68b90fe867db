"""RegionCL-M's leaves of DetCo's COCO protocols: RegionCL's fine-tuning logs
(Annbless/RegionCL @ 61bbcab, logs/RegionCLM/*.log) ran detectron2 0.5, whose
build_optimizer gives every bias WEIGHT_DECAY_BIAS (1e-4), norm biases
included, and norm weights WEIGHT_DECAY_NORM (0). DetCo's leaves (v0.3) keep
norm biases at 0; everything else is the same."""
import copy
import os.path as osp

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
MMDET_CONFIGS = osp.join(REPO, 'configs', 'benchmarks', 'mmdetection')
ARCHS = {'mask-rcnn_r50-c4_syncbn-extra-norm': 0.02, 'mask-rcnn_r50-fpn_syncbn': 0.02,
         'retinanet_r50-fpn-p6p7_syncbn': 0.01}
LEAVES = [(f'{arch}_regioncl-m_detco-ms-{its}_coco.py', lr)
          for arch, lr in ARCHS.items() for its in ('90k', '180k')]
NORM_TYPES = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.GroupNorm,
              torch.nn.LayerNorm)


def build_model_and_optimizer(name):
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    import crosscl_mm  # noqa: F401
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(osp.join(MMDET_CONFIGS, name))
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(copy.deepcopy(cfg.model))
        optim = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    groups = {id(p): g for g in optim.optimizer.param_groups for p in g['params']}
    return model, groups


def decay_by_module_walk(model, norm_bias_decay):
    """Per parameter, from the module that owns it: norm weights 0, norm
    biases norm_bias_decay, other biases and all weights 1e-4."""
    expected = {}
    for module in model.modules():
        for pname, p in module.named_parameters(recurse=False):
            is_norm = isinstance(module, NORM_TYPES)
            if pname == 'bias':
                expected[id(p)] = norm_bias_decay if is_norm else 1e-4
            else:
                expected[id(p)] = 0.0 if is_norm else 1e-4
    return expected


@pytest.mark.parametrize('name,lr', LEAVES)
def test_regioncl_m_leaves_decay_as_detectron2_v0_5(name, lr):
    model, groups = build_model_and_optimizer(name)
    expected = decay_by_module_walk(model, norm_bias_decay=1e-4)
    assert groups.keys() == expected.keys()
    norm_biases = [id(m.bias) for m in model.modules()
                   if isinstance(m, NORM_TYPES) and m.bias is not None]
    assert len(norm_biases) > 50  # backbone BNs (and the C4 head's extra norm, FPN norms)
    for pid, wd in expected.items():
        assert groups[pid]['weight_decay'] == wd and groups[pid]['lr'] == lr
    assert {groups[pid]['weight_decay'] for pid in norm_biases} == {1e-4}


def test_detco_leaf_of_the_same_protocol_keeps_norm_biases_undecayed():
    """The one difference: DetCo's v0.3 leaf gives the same norm biases 0
    (were the RegionCL-M leaf's override dropped, the test above would fail
    on exactly these parameters)."""
    model, groups = build_model_and_optimizer(
        'retinanet_r50-fpn-p6p7_syncbn_detco_detco-ms-90k_coco.py')
    expected = decay_by_module_walk(model, norm_bias_decay=0.0)
    assert groups.keys() == expected.keys()
    assert all(groups[pid]['weight_decay'] == wd for pid, wd in expected.items())
