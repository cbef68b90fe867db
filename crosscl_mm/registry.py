"""crosscl_mm's registry nodes, children of MMEngine's roots.

Configs with ``default_scope='crosscl_mm'`` build our components by plain
name and reach other codebases by prefix (``mmdet.ResNet``). So that users
keep their mmselfsup- or mmpretrain-scoped configs, :func:`export_to_scope`
also registers our components in that codebase's registries.
"""
import importlib
import importlib.util

from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import RUNNER_CONSTRUCTORS as MMENGINE_RUNNER_CONSTRUCTORS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import TASK_UTILS as MMENGINE_TASK_UTILS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
from mmengine.registry import Registry

RUNNERS = Registry('runner', parent=MMENGINE_RUNNERS, locations=['crosscl_mm.engine'])
RUNNER_CONSTRUCTORS = Registry('runner constructor', parent=MMENGINE_RUNNER_CONSTRUCTORS,
                               locations=['crosscl_mm.engine'])
LOOPS = Registry('loop', parent=MMENGINE_LOOPS, locations=['crosscl_mm.engine'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, locations=['crosscl_mm.engine'])
# Modules that subclass mmdet's datasets and models (crosscl_mm.datasets.voc,
# crosscl_mm.models.roi_heads) are imported when the registry is first asked
# for a name, not by `import crosscl_mm`: importing mmdet's model and dataset
# zoo takes seconds, which tools such as the converter need not pay.
DATASETS = Registry('dataset', parent=MMENGINE_DATASETS,
                    locations=['crosscl_mm.datasets', 'crosscl_mm.datasets.voc',
                               'crosscl_mm.datasets.coco'])
DATA_SAMPLERS = Registry('data sampler', parent=MMENGINE_DATA_SAMPLERS,
                         locations=['crosscl_mm.datasets'])
TRANSFORMS = Registry('transform', parent=MMENGINE_TRANSFORMS, locations=['crosscl_mm.datasets'])
FUNCTIONS = Registry('function', parent=MMENGINE_FUNCTIONS, locations=['crosscl_mm.datasets'])
MODELS = Registry('model', parent=MMENGINE_MODELS,
                  locations=['crosscl_mm.models', 'crosscl_mm.models.roi_heads',
                             'crosscl_mm.models.dense_heads', 'crosscl_mm.models.retinanet'])
MODEL_WRAPPERS = Registry('model_wrapper', parent=MMENGINE_MODEL_WRAPPERS,
                          locations=['crosscl_mm.models'])
WEIGHT_INITIALIZERS = Registry('weight initializer', parent=MMENGINE_WEIGHT_INITIALIZERS,
                               locations=['crosscl_mm.models'])
OPTIMIZERS = Registry('optimizer', parent=MMENGINE_OPTIMIZERS, locations=['crosscl_mm.engine'])
OPTIM_WRAPPERS = Registry('optim_wrapper', parent=MMENGINE_OPTIM_WRAPPERS,
                          locations=['crosscl_mm.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry('optimizer wrapper constructor',
                                      parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
                                      locations=['crosscl_mm.engine'])
PARAM_SCHEDULERS = Registry('parameter scheduler', parent=MMENGINE_PARAM_SCHEDULERS,
                            locations=['crosscl_mm.engine'])
METRICS = Registry('metric', parent=MMENGINE_METRICS, locations=['crosscl_mm.engine'])
EVALUATOR = Registry('evaluator', parent=MMENGINE_EVALUATOR, locations=['crosscl_mm.engine'])
TASK_UTILS = Registry('task util', parent=MMENGINE_TASK_UTILS, locations=['crosscl_mm.models'])
VISUALIZERS = Registry('visualizer', parent=MMENGINE_VISUALIZERS,
                       locations=['crosscl_mm.engine'])
VISBACKENDS = Registry('vis_backend', parent=MMENGINE_VISBACKENDS,
                       locations=['crosscl_mm.engine'])
LOG_PROCESSORS = Registry('log_processor', parent=MMENGINE_LOG_PROCESSORS,
                          locations=['crosscl_mm.engine'])

# The registries that hold our public components, by attribute name; these
# are the ones mirrored into another codebase's scope.
EXPORTED = ('MODELS', 'DATASETS', 'TRANSFORMS', 'HOOKS')


def export_to_scope(scope: str) -> bool:
    """Register every crosscl_mm component in the same-named registries of
    ``scope`` (e.g. ``'mmselfsup'``), so a config whose default scope is
    ``scope`` builds ``type='CrossCL'`` without a prefix.

    Names that the other scope already defines are left to it. Returns False,
    doing nothing, when ``scope`` is not installed.
    """
    if importlib.util.find_spec(scope) is None:
        return False
    other = importlib.import_module(f'{scope}.registry')
    for attr in EXPORTED:
        ours, theirs = globals()[attr], getattr(other, attr, None)
        if theirs is None:
            continue
        for name, obj in ours.module_dict.items():
            if name not in theirs.module_dict:
                theirs.register_module(name=name, module=obj)
    return True


def enable_package_configs() -> None:
    """Let configs inherit ours as ``_base_ = 'crosscl_mm::<path>'``.

    mmengine resolves ``package::path`` only for packages in its
    ``MODULE2PACKAGE`` table; the configs themselves ship in
    ``crosscl_mm/.mim/configs``. The config must be parsed after
    ``import crosscl_mm``, which ``tools/train.py`` and ``mim train
    crosscl_mm`` do.
    """
    from mmengine.config.utils import MODULE2PACKAGE
    MODULE2PACKAGE.setdefault('crosscl_mm', 'crosscl_mm')
