import math

from mmengine.hooks import Hook

from crosscl_mm.registry import HOOKS


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Stop training at the first non-finite loss, naming the iteration and
    the terms that went bad.

    Raising before the next checkpoint keeps the last checkpoint on disk a
    good one, so ``--resume`` continues from known-good weights.
    """

    priority = 'VERY_HIGH'

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if not outputs:
            return
        values = {k: float(v.detach() if hasattr(v, 'detach') else v)
                  for k, v in outputs.items() if 'loss' in k}
        bad = {k: v for k, v in values.items() if not math.isfinite(v)}
        if bad:
            raise FloatingPointError(
                f'non-finite loss at iteration {runner.iter + 1} (epoch {runner.epoch + 1}): '
                + ', '.join(f'{k}={v}' for k, v in bad.items())
                + f'. The last checkpoint in {runner.work_dir} predates it; fix the cause '
                'and resume from it with --resume.')
