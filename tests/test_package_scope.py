"""crosscl_mm inside the environment's self-supervised package (mmselfsup, or
mmpretrain with `make test ENV=mmpretrain`): our public components resolve by
plain name in that package's registries, and a CrossCL config whose default
scope is that package trains."""
import ast
import glob
import importlib
import math
import os.path as osp

import pytest

from conftest import REPO, SELFSUP_PACKAGE, TEST_CONFIGS, python_cmd, run
from crosscl_mm.utils.work_dir import read_scalars

PACKAGES = {'mmselfsup', 'mmpretrain', 'mmcls'}
PUBLIC = {
    'MODELS': ['CrossCL', 'RegionPairDataPreprocessor', 'GlobalProjectionNeck', 'TopDownFPN',
               'InfoNCELoss', 'DetCo', 'PatchSetProjectionNeck'],
    'DATASETS': ['UnlabeledImageFolder'],
    'TRANSFORMS': ['LoadImageRGB', 'PairedRandomResizedCrop', 'SlidingWindowRegions',
                   'ViewColorAugment', 'PackRegionPairInputs', 'MultiViewRandomResizedCrop',
                   'ViewRandAugment', 'JigsawPatches'],
    'HOOKS': ['MultiScaleTrainingHook', 'FiniteLossHook'],
}


def module_level_imports(path):
    """Top-level module names imported by statements that run on import (outside
    any function or class body)."""
    tree = ast.parse(open(path).read(), path)
    names, todo = [], list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if isinstance(node, ast.Import):
            names += [a.name.split('.')[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.append(node.module.split('.')[0])
        todo += [c for c in ast.iter_child_nodes(node) if isinstance(c, ast.stmt)]
    return names


def test_plugin_code_does_not_import_the_packages_at_module_level():
    """The plugin works the same beside either package: none of its modules
    imports mmselfsup, mmpretrain or mmcls on import (the scope export and the
    mmselfsup fix import them inside functions, only when installed). mmdet
    itself imports mmpretrain when it is installed; that is mmdet's doing."""
    files = glob.glob(osp.join(REPO, 'crosscl_mm', '**', '*.py'), recursive=True)
    assert len(files) > 20
    offending = {osp.relpath(f, REPO): sorted(set(module_level_imports(f)) & PACKAGES)
                 for f in files}
    assert {f: p for f, p in offending.items() if p} == {}


def test_module_level_import_scan(tmp_path):
    probe = tmp_path / 'probe.py'
    probe.write_text('try:\n    import mmpretrain.models\nexcept ImportError:\n    pass\n'
                     'if True:\n    from mmcls import registry\n'
                     'def later():\n    import mmselfsup\n'
                     'class Later:\n    from mmselfsup import models\n')
    assert sorted(module_level_imports(str(probe))) == ['mmcls', 'mmpretrain']


@pytest.mark.parametrize('registry', sorted(PUBLIC))
def test_public_components_resolve_in_package_scope(registry):
    import crosscl_mm
    ours = getattr(importlib.import_module('crosscl_mm.registry'), registry)
    theirs = getattr(importlib.import_module(f'{SELFSUP_PACKAGE}.registry'), registry)
    assert crosscl_mm.EXPORTED_SCOPES == [SELFSUP_PACKAGE]
    for name in PUBLIC[registry]:
        assert ours.get(name) is not None, name
        assert theirs.get(name) is ours.get(name), (registry, name)


def test_crosscl_config_in_package_default_scope_trains(photo_dir, tmp_path):
    """Our config with `default_scope` set to the package: every plain type name
    (model, data preprocessor, dataset, transforms, hooks) comes from the
    package's registries, through the export."""
    work_dir = str(tmp_path / 'scoped')
    run(python_cmd('tools/train.py', osp.join(TEST_CONFIGS, 'crosscl_r18_tiny.py'),
                   '--work-dir', work_dir, '--cfg-options', f'default_scope={SELFSUP_PACKAGE}',
                   f'train_dataloader.dataset.data_root={photo_dir}'))
    log_path, = glob.glob(osp.join(work_dir, '*', '*.log'))
    logs = open(log_path).read()
    assert f"default_scope = '{SELFSUP_PACKAGE}'" in logs
    records = [r for r in read_scalars(work_dir) if 'loss_p3_p4' in r]
    assert len(records) == 4
    assert all(math.isfinite(r['loss']) and r['loss'] > 0 for r in records)
