"""The config of one trial: a protocol's leaf config with the converted
checkpoint, the data root, the work dir and the trial's seed, written to the
trial's work dir and run from there by ``tools/dist_train.sh``. Nothing else
of the leaf changes."""
import os.path as osp
from typing import Optional

from crosscl_mm.utils.files import open_atomically


def _replace(node, pretrained: str, checkpoint: str, old_root: Optional[str],
             new_root: Optional[str]):
    """A copy of ``node`` where every Pretrained init_cfg whose checkpoint is
    ``pretrained`` loads ``checkpoint`` and every string that starts with
    ``old_root`` starts with ``new_root`` (the datasets' data_root and the
    evaluator's annotation file)."""
    if isinstance(node, dict):
        out = {k: _replace(v, pretrained, checkpoint, old_root, new_root) for k, v in node.items()}
        if out.get('type') == 'Pretrained' and node.get('checkpoint') == pretrained:
            out['checkpoint'] = checkpoint
        return out
    if isinstance(node, (list, tuple)):
        return type(node)(_replace(v, pretrained, checkpoint, old_root, new_root) for v in node)
    if isinstance(node, str) and old_root and new_root is not None and node.startswith(old_root):
        return new_root + node[len(old_root):]
    return node


def run_config(leaf_config: str, checkpoint: str, work_dir: str, seed: int,
               data_root: Optional[str] = None):
    """The leaf config (an mmengine Config) made into one trial's: every
    ``Pretrained`` checkpoint equal to the leaf's ``pretrained`` replaced by
    ``checkpoint``, ``data_root`` (if given) in place of the leaf's,
    ``work_dir`` and ``randomness.seed``."""
    from mmengine.config import Config
    from .protocols import load_config
    cfg = load_config(leaf_config)
    pretrained = cfg.get('pretrained')
    if not isinstance(pretrained, str):
        raise ValueError(f'{leaf_config}: a leaf config sets `pretrained`, the checkpoint its '
                         f'Pretrained init_cfgs load')
    old_root = cfg.get('data_root')
    if data_root is not None:
        data_root = data_root if data_root.endswith('/') else data_root + '/'
    state = _replace(cfg.to_dict(), pretrained, checkpoint, old_root, data_root)
    state.update(pretrained=checkpoint, work_dir=work_dir)
    if data_root is not None:
        state['data_root'] = data_root
    state['randomness'] = dict(state.get('randomness') or {}, seed=seed)
    return Config(state, filename=leaf_config)


def write_run_config(leaf_config: str, checkpoint: str, work_dir: str, seed: int,
                     data_root: Optional[str] = None) -> str:
    """:func:`run_config` dumped to ``work_dir/<leaf name>`` (atomically);
    returns its path."""
    cfg = run_config(leaf_config, checkpoint, work_dir, seed, data_root)
    path = osp.join(work_dir, osp.basename(leaf_config))
    with open_atomically(path, 'w') as f:
        f.write(cfg.pretty_text)
    return path
