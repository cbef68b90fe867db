"""DetPreciseBNHook in real mmengine runs: the statistics it sets are the
average of the per-batch statistics of the training forward (checked against
an independent computation), and it runs where detectron2's PreciseBN does:
before each validation and after the last iteration, before the checkpoint."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, METRICS, MODELS
from torch import nn
from torch.utils.data import Dataset

import crosscl_mm  # noqa: F401


@DATASETS.register_module(name='PreciseBNTestScaled', force=True)
class Scaled(Dataset):
    """Item i: a fixed random 3x6x6 image times (i + 1), so batch statistics
    differ from batch to batch."""

    def __init__(self, n=8):
        g = torch.Generator().manual_seed(0)
        self.images = [torch.randn(3, 6, 6, generator=g) * (i + 1) for i in range(n)]

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return dict(inputs=self.images[i])


@MODELS.register_module(name='PreciseBNTestConvBN', force=True)
class ConvBN(BaseModel):

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        x = self.bn(self.conv(inputs))
        if mode == 'loss':
            return dict(loss=x.pow(2).mean())
        return [dict(mean=float(x.mean()))] * len(inputs) if mode == 'predict' else x


@METRICS.register_module(name='PreciseBNTestCount', force=True)
class Count(BaseMetric):

    def process(self, data_batch, data_samples):
        self.results += list(data_samples)

    def compute_metrics(self, results):
        return dict(count=len(results))


def run(tmp_path, train_cfg, validate=True, num_iters=3, **train_loader):
    from mmengine.config import Config
    from mmengine.runner import Runner
    loader = dict(dataset=dict(type='PreciseBNTestScaled'), batch_size=2, num_workers=0,
                  collate_fn=dict(type='default_collate'),
                  sampler=dict(type='DefaultSampler', shuffle=False))
    cfg = dict(
        model=dict(type='PreciseBNTestConvBN'), work_dir=str(tmp_path),
        train_dataloader=dict(loader, **train_loader), train_cfg=train_cfg,
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        custom_hooks=[dict(type='crosscl_mm.DetPreciseBNHook', num_iters=num_iters)],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1000,
                                           by_epoch='max_epochs' in train_cfg)),
        randomness=dict(seed=0),
        # The runner makes its scope the process's default: crosscl_mm's, as the
        # other in-process tests expect.
        default_scope='crosscl_mm',
        # A name of its own: runners started within the same second would
        # otherwise share one logger (and its log file).
        experiment_name=f'precise_bn_{tmp_path.name}')
    if validate:
        cfg.update(val_dataloader=loader, val_cfg=dict(),
                   val_evaluator=dict(type='PreciseBNTestCount'))
    runner = Runner.from_cfg(Config(cfg))
    runner.train()
    log = open(glob.glob(osp.join(str(tmp_path), '*', '*.log'))[0]).read()
    return runner, log


def test_sets_the_average_of_the_per_batch_statistics(tmp_path):
    runner, log = run(tmp_path, dict(type='IterBasedTrainLoop', max_iters=2), validate=False)
    model = runner.model
    # Independently: the batches the hook draws (training order, no shuffle)
    # through the final conv; BatchNorm's running_var is the unbiased variance.
    images = Scaled().images
    batches = [torch.stack(images[i:i + 2]) for i in (0, 2, 4)]
    with torch.no_grad():
        feats = [model.conv(b).transpose(0, 1).reshape(4, -1) for b in batches]
    mean = torch.stack([f.mean(1) for f in feats]).mean(0)
    var = torch.stack([f.var(1, unbiased=True) for f in feats]).mean(0)
    assert torch.allclose(model.bn.running_mean, mean, rtol=1e-5, atol=1e-6)
    assert torch.allclose(model.bn.running_var, var, rtol=1e-5, atol=1e-6)
    assert model.bn.momentum == 0.1  # restored
    # The EMA of training would be far from it; the hook's average is not.
    assert not torch.allclose(var, feats[-1].var(1), rtol=1e-2)
    assert 're-estimated the statistics of 1 BatchNorm layers over 3 training batches ' \
           'per process (after iteration 2)' in log
    # The last checkpoint is saved after the hook: it holds these statistics.
    ckpt = torch.load(osp.join(str(tmp_path), 'iter_2.pth'), map_location='cpu')
    assert torch.equal(ckpt['state_dict']['bn.running_var'], model.bn.running_var)


def test_capped_at_one_pass_over_the_training_set(tmp_path):
    _, log = run(tmp_path, dict(type='IterBasedTrainLoop', max_iters=1), validate=False,
                 num_iters=200)
    assert 'over 4 training batches per process (after iteration 1)' in log  # 8 images / 2


@pytest.mark.parametrize('train_cfg, expected, train_loader', [
    # mmdet's iteration-based loader: an InfiniteSampler and a persistent worker,
    # which a hook iterating the training loader itself would end (StopIteration).
    (dict(type='IterBasedTrainLoop', max_iters=5, val_interval=2),
     ['iteration 2', 'iteration 4', 'iteration 5'],
     dict(sampler=dict(type='InfiniteSampler', shuffle=True), num_workers=1,
          persistent_workers=True)),
    (dict(type='EpochBasedTrainLoop', max_epochs=3, val_interval=2), ['epoch 2', 'epoch 3'],
     dict()),
])
def test_runs_before_each_validation_and_after_the_last_step(tmp_path, train_cfg, expected,
                                                             train_loader):
    runner, log = run(tmp_path, train_cfg, num_iters=1, **train_loader)
    ran = [line.split('(after ')[1].rstrip(')') for line in log.splitlines()
           if 'DetPreciseBNHook: re-estimated' in line]
    assert ran == expected
    assert log.count('count: 8') == len(expected)  # each followed by a validation
    assert runner.iter == (5 if 'max_iters' in train_cfg else 12)  # training ran to the end
