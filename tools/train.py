"""Train a model from a config with MMEngine's Runner (OpenMMLab's train.py).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--cfg-options k=v ...] [--launcher {none,pytorch,slurm,mpi}]

Works for crosscl_mm configs and for mmselfsup/mmdet configs that import
crosscl_mm; ``import crosscl_mm`` applies the fixes in crosscl_mm/compat.py
(CPU distributed training, resume under torch's weights_only, ...).
"""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

import crosscl_mm  # noqa: F401  (applies compat fixes, registers modules)
from crosscl_mm.config_checks import check_config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from the given checkpoint, or from the latest one in '
                        'the work dir when no path is given')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision: bfloat16 where the device has it, float16 with '
                             'dynamic loss scaling otherwise (MixedPrecisionOptimWrapper)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate with the total batch size')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, key=value')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def config_from_args(args) -> Config:
    """The config of ``args.config`` with the command line applied."""
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        # Prefixed: configs of other scopes (mmselfsup, mmdet) build it too.
        cfg.optim_wrapper.type = 'crosscl_mm.MixedPrecisionOptimWrapper'
        cfg.optim_wrapper.setdefault('dtype', 'auto')

    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise RuntimeError('--auto-scale-lr needs `auto_scale_lr.base_batch_size` in the config')
        cfg.auto_scale_lr.enable = True

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    # Refuse a broken config before any process group or data scan starts.
    check_config(cfg)
    loader = cfg.get('train_dataloader') or {}
    if loader.get('num_workers', 1) == 0 and loader.get('persistent_workers', False):
        # torch refuses persistent workers without workers; `num_workers=0`
        # from the command line should just work.
        loader['persistent_workers'] = False

    return cfg


def main():
    cfg = config_from_args(parse_args())
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else \
        crosscl_mm.registry.RUNNERS.build(cfg)
    runner.train()


if __name__ == '__main__':
    main()
