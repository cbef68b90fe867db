"""Train a benchmark protocol config a few iterations at tiny size, in this
process (one rank; mmengine turns SyncBN into BN), with its own evaluator at
the end, and read back the log and the evaluation: for tests that check that
a protocol's config runs as written, from a converted checkpoint."""
import glob
import os.path as osp
from typing import Dict, Tuple

from crosscl_mm.utils.work_dir import read_scalars

CLASSES = ('circle', 'rectangle', 'triangle')  # the shapes_data categories


def tiny_options(train_scales_key: str, rois: int = 16, iters: int = 2) -> Dict:
    """Images of about 120x96, 1 per batch, ``iters`` iterations, Precise BN
    over 2 batches, few proposals and RoIs, no checkpoint; ``train_scales_key``
    is the key of the config's RandomChoiceResize scales."""
    return {
        train_scales_key: [(128, 96), (128, 112)],
        'val_dataloader.dataset.pipeline.1.scale': (128, 112),
        'train_dataloader.batch_size': 1, 'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'val_dataloader.num_workers': 0, 'val_dataloader.persistent_workers': False,
        'model.train_cfg.rpn_proposal.nms_pre': 200, 'model.train_cfg.rpn_proposal.max_per_img': 50,
        'model.train_cfg.rcnn.sampler.num': rois, 'model.test_cfg.rpn.nms_pre': 200,
        'model.test_cfg.rpn.max_per_img': rois,
        'train_cfg.max_iters': iters, 'train_cfg.val_interval': iters,
        'custom_hooks.0.num_iters': 2, 'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint.save_last': False, 'randomness.seed': 0}


def dataset_options(data_root: str, train_ann: str, val_ann: str, img_prefix: str,
                    val_evaluator_ann: str, num_classes: int = len(CLASSES)) -> Dict:
    options = {'val_evaluator.ann_file': val_evaluator_ann,
               'train_dataloader.dataset.ann_file': train_ann,
               'val_dataloader.dataset.ann_file': val_ann,
               'model.roi_head.bbox_head.num_classes': num_classes,
               'model.roi_head.mask_head.num_classes': num_classes}
    for loader in ('train_dataloader', 'val_dataloader'):
        options.update({f'{loader}.dataset.data_root': data_root,
                        f'{loader}.dataset.metainfo': dict(classes=CLASSES),
                        f'{loader}.dataset.data_prefix': dict(img=img_prefix)})
    return options


def train_protocol(config: str, work_dir: str, options: Dict) -> Tuple[object, str, Dict]:
    """Run ``config`` with ``options`` merged in; returns the runner, the log
    text and the last evaluation's scalars."""
    from mmengine.config import Config
    from mmengine.runner import Runner
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(options)
    cfg.work_dir = work_dir
    cfg.launcher = 'none'
    runner = Runner.from_cfg(cfg)
    runner.train()
    log = '\n'.join(open(p).read() for p in glob.glob(osp.join(work_dir, '*', '*.log')))
    evaluations = [r for r in read_scalars(work_dir) if not any(k in r for k in ('loss', 'lr'))]
    return runner, log, evaluations[-1]

