"""DetCo's checkpoints carry the backbone's BatchNorm statistics of the
global views (GlobalViewBNHook, on by default in the DetCo configs): the
saved statistics against PreciseBN's average written here from its
definition over the very batches the hook drew. That the hook runs before
each checkpoint, in every process: tests/test_detco_run.py."""
import copy
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.runner import Runner

import crosscl_mm  # noqa: F401
from crosscl_mm.engine.hooks import GlobalViewBNHook

from conftest import REPO

MEAN = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
STD = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)


def tiny_runner(photo_dir, work_dir):
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'detco_r50_200e_in1k.py'))
    cfg.merge_from_dict({
        'work_dir': work_dir, 'train_dataloader.dataset.data_root': photo_dir,
        'train_dataloader.batch_size': 2, 'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'model.backbone.depth': 18, 'model.level_channels': [64, 128, 256, 512],
        'model.queue_len': 8, 'train_dataloader.dataset.pipeline.1.sizes': [64, 64, 126, 126],
        'train_dataloader.dataset.pipeline.4.patch_size': 32, 'env_cfg.cudnn_benchmark': False,
        'randomness.seed': 0})
    cfg.custom_hooks[0]['num_iters'] = 3
    return Runner.from_cfg(cfg)


def batch_norm_inputs(backbone, images):
    """The input of every BatchNorm layer of ``backbone`` (in training mode)."""
    seen = {}
    handles = [m.register_forward_pre_hook(lambda m, a, name=name: seen.__setitem__(name, a[0]))
               for name, m in backbone.named_modules() if isinstance(m, torch.nn.BatchNorm2d)]
    backbone.train()  # (mmdet's ResNet.train returns None)
    with torch.no_grad():
        backbone(images)
    for h in handles:
        h.remove()
    return seen


def test_checkpoint_carries_global_view_statistics(photo_dir, tmp_path):
    runner = tiny_runner(photo_dir, str(tmp_path))
    hook = next(h for h in runner.hooks if isinstance(h, GlobalViewBNHook))
    assert (hook.num_iters, hook.views, hook.module) == (3, (0, 1), 'backbone')
    model = runner.model
    backbone_before = copy.deepcopy(model.backbone)
    training_stats = {k: v.clone() for k, v in model.backbone.state_dict().items()
                      if k.endswith(('running_mean', 'running_var'))}

    # Observe the batches the hook draws from its own loader.
    from crosscl_mm.engine.hooks.precise_bn import training_batches
    batches, hook._per_pass = training_batches(runner, 0, 'test')
    drawn = []

    def recording():
        for batch in batches:
            drawn.append(batch)
            yield batch
    hook._batches = recording()
    hook.update_stats(runner)
    runner.save_checkpoint(str(tmp_path), 'bn.pth', save_optimizer=False,
                           save_param_scheduler=False)
    saved = torch.load(osp.join(str(tmp_path), 'bn.pth'), map_location='cpu',
                       weights_only=False)['state_dict']
    assert len(drawn) == 3

    # PreciseBN from its definition: each global view of each batch is one
    # BatchNorm batch; average its mean and unbiased variance over the 6 batches.
    sums = {}
    for batch in drawn:
        for view in (0, 1):
            images = (torch.stack(batch['inputs'][view]).float() - MEAN) / STD
            for name, x in batch_norm_inputs(backbone_before, images).items():
                mean, var = x.mean((0, 2, 3)), x.var((0, 2, 3), unbiased=True)
                old = sums.get(name, (0, 0))
                sums[name] = (old[0] + mean / 6, old[1] + var / 6)
    assert len(sums) == 20  # ResNet-18: stem, 16 in the blocks, 3 downsample
    for name, (mean, var) in sums.items():
        for buffer, expected in (('running_mean', mean), ('running_var', var)):
            key = f'backbone.{name}.{buffer}'
            torch.testing.assert_close(saved[key], expected, rtol=1e-4, atol=1e-5, msg=key)
            # the live model carries them too, and they are not the training statistics
            torch.testing.assert_close(model.state_dict()[key], saved[key])
            assert not torch.allclose(saved[key], training_stats[key[len('backbone.'):]])
    # Everything else is saved as it was: the momentum encoder's copy untouched.
    assert not any(torch.equal(saved[f'momentum_encoder.module.backbone.{n}.running_var'],
                               saved[f'backbone.{n}.running_var']) for n in sums)
