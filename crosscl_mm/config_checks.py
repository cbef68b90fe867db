"""Checks a training config before anything expensive starts, so a typo
fails in a second with the offending field named, not after every rank has
joined the process group and scanned the data."""
import os.path as osp

from mmengine.config import Config

from crosscl_mm.models.algorithms.crosscl import region_term_levels


def _type_name(cfg) -> str:
    t = cfg.get('type', '') if isinstance(cfg, dict) else ''
    return t.split('.')[-1] if isinstance(t, str) else getattr(t, '__name__', '')


def check_config(cfg: Config) -> None:
    """Raise ``ValueError`` naming the field for the mistakes we can see early."""
    loader = cfg.get('train_dataloader')
    if loader is not None:
        batch_size = loader.get('batch_size', 1)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f'train_dataloader.batch_size must be a positive int, got {batch_size!r}')
        dataset = loader.get('dataset', {})
        if _type_name(dataset) == 'UnlabeledImageFolder':
            root = dataset.get('data_root')
            if not root or not osp.isdir(root):
                raise ValueError(f'train_dataloader.dataset.data_root={root!r} is not a folder')
        for i, step in enumerate(dataset.get('pipeline', []) or []):
            if _type_name(step) == 'PairedRandomResizedCrop':
                size = step.get('size', 224)
                if not isinstance(size, int) or size < 32:
                    raise ValueError(f'train_dataloader.dataset.pipeline[{i}].size must be an int '
                                     f'>= 32 (the backbone downsamples 32x), got {size!r}')
    model = cfg.get('model', {})
    if _type_name(model) == 'CrossCL':
        levels = {name for name, _ in model.get('region_levels', (('p3', 8), ('p4', 16)))}
        if model.get('fpn', True) is None:
            levels = set()
        for name, weight in (model.get('loss_weights') or {}).items():
            term = region_term_levels(name) if weight else None
            if term is None:
                continue
            missing = set(term) - levels
            if missing:
                raise ValueError(f'model.loss_weights.{name} needs FPN level(s) {sorted(missing)}, '
                                 f'but model.region_levels has {sorted(levels) or "none"}')
    for hook in cfg.get('custom_hooks', []) or []:
        if _type_name(hook) == 'MultiScaleTrainingHook':
            sizes = hook.get('sizes', (224, 384, 480))
            if not sizes or any(not isinstance(s, int) or s < 32 for s in sizes):
                raise ValueError(f'custom_hooks MultiScaleTrainingHook.sizes must be ints >= 32, '
                                 f'got {sizes!r}')
