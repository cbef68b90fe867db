# The runtime of default_runtime.py, logging to TensorBoard as well: every scalar the
# logger writes to <work_dir>/<timestamp>/vis_data/scalars.json also goes to an
# events.out.tfevents.* file in the same folder (`tensorboard --logdir <work_dir>`).
#
# Switch it on by naming this file in place of '_base_/default_runtime.py' in a config's
# _base_ list. It is a base of its own because mmengine cannot do it with a flag: a child's
# value does not re-evaluate an expression in a base, and two files of one _base_ list may
# not define the same key (so this cannot be listed beside a config that already has
# default_runtime.py among its bases). A config inheriting a leaf config instead
# sets `visualizer = dict(vis_backends=[...])` itself, with the list below.
_base_ = './default_runtime.py'

vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
visualizer = dict(vis_backends=vis_backends)
