"""Every benchmark config trains and evaluates on the CPU: a few iterations of
`tools/dist_train.sh CONFIG 2` (two processes over gloo) on the generated
shapes data at 192x160, from a converted CrossCL checkpoint, with Precise BN
running before the evaluation and the evaluation printing AP. Only the data,
the size and the length change (--cfg-options); the protocol is the config's.

One COCO config and the VOC config run by default; the others are slow."""
import glob
import os.path as osp
from collections import OrderedDict

import pytest
import torch

from conftest import free_port, python_cmd, run
from crosscl_mm.utils.work_dir import read_scalars

CONFIGS = 'configs/benchmarks/mmdetection'
CLASSES = '(circle,rectangle,triangle)'
# BatchNorm layers that train: ResNet-50 has a stem BN, 3 per bottleneck (16
# of them) and 4 downsample BNs; the FPN's 4 laterals and 4 outputs, the box
# head's 4 convs and the mask head's 4 convs each have one. The C4 model's
# res5 (3 bottlenecks + downsample) is its RoI head, followed by the extra BN.
RESNET50_BN = 1 + 3 * 16 + 4
FPN_MASK_RCNN_BN = RESNET50_BN + 8 + 4 + 4
C4_FASTER_RCNN_BN = RESNET50_BN + 1


@pytest.fixture(scope='module')
def converted(module_tmp_path):
    """A crosscl_mm CrossCL checkpoint's online encoder (mmdet ResNet-50 and
    TopDownFPN, random weights), converted as convert_pretrained.py does:
    {'fpn': with the FPN, 'backbone': backbone only}."""
    from crosscl_mm.converters.encoder_weights import convert, serialise
    from crosscl_mm.registry import MODELS
    torch.manual_seed(0)
    state = OrderedDict()
    parts = (('backbone.', dict(type='mmdet.ResNet', depth=50, out_indices=(1, 2, 3))),
             ('fpn.', dict(type='crosscl_mm.TopDownFPN', in_channels=(512, 1024, 2048))))
    for prefix, cfg in parts:
        module = MODELS.build(cfg)
        module.init_weights()
        state.update((prefix + k, v) for k, v in module.state_dict().items())
    state['queue.ptr'] = torch.zeros(1, dtype=torch.long)
    paths = {}
    for name, with_fpn in (('fpn', True), ('backbone', False)):
        paths[name] = str(module_tmp_path / f'crosscl_mmdet_{name}.pth')
        with open(paths[name], 'wb') as f:
            serialise(convert({'state_dict': state}, 'mmdet', with_fpn=with_fpn), 'mmdet',
                      'test', f)
    return paths


def tiny_options(pipeline_key, epochs=False, rois=16):
    """Small images, 2 iterations (or one epoch of 4 images on 2 ranks),
    Precise BN over 2 batches, few proposals and RoIs (the C4 model's res5 head
    costs about 1 GFLOP per RoI), every box kept at test."""
    scale = pipeline_key.endswith('.scale')
    return [
        f'{pipeline_key}={"(192,160)" if scale else "[(192,128),(192,160)]"}',
        'train_dataloader.batch_size=1', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
        'val_dataloader.dataset.pipeline.1.scale=(192,160)',
        'model.train_cfg.rpn_proposal.nms_pre=200', 'model.train_cfg.rpn_proposal.max_per_img=50',
        f'model.train_cfg.rcnn.sampler.num={rois}', 'model.test_cfg.rpn.nms_pre=200',
        f'model.test_cfg.rpn.max_per_img={rois}', 'model.test_cfg.rcnn.score_thr=0.0',
        *(['train_cfg.max_epochs=1', 'train_cfg.val_interval=1'] if epochs else
          ['train_cfg.max_iters=2', 'train_cfg.val_interval=2']),
        'custom_hooks.0.num_iters=2', 'default_hooks.logger.interval=1',
        'default_hooks.checkpoint.save_last=False', 'randomness.seed=0']


def coco_options(shapes_data, converted, config):
    fpn = '_crosscl-fpn_' in config
    epochs = config.endswith(('_1x_coco.py', '_2x_coco.py'))
    ckpt = converted['fpn' if fpn else 'backbone']
    root = shapes_data['coco'] + '/'
    options = [f'{loader}.dataset.{key}' for loader in ('train_dataloader', 'val_dataloader')
               for key in (f'data_root={root}', f'metainfo.classes={CLASSES}',
                           'data_prefix.img=images/')]
    options += ['train_dataloader.dataset.ann_file=train.json',
                'val_dataloader.dataset.ann_file=val.json',
                f'val_evaluator.ann_file={shapes_data["val"]}',
                'model.roi_head.bbox_head.num_classes=3', 'model.roi_head.mask_head.num_classes=3']
    pipeline = 'train_dataloader.dataset.pipeline.2.' + ('scale' if epochs else 'scales')
    options += tiny_options(pipeline, epochs) + [f'model.backbone.init_cfg.checkpoint={ckpt}']
    if fpn:
        options.append(f'model.neck.init_cfg.1.checkpoint={ckpt}')
    return options, ckpt


def voc_options(shapes_data):
    root = shapes_data['voc'] + '/'
    options = [f'val_dataloader.dataset.data_root={root}',
               f'val_dataloader.dataset.metainfo.classes={CLASSES}',
               'model.roi_head.bbox_head.num_classes=3']
    for i in (0, 1):
        options += [f'train_dataloader.dataset.datasets.{i}.data_root={root}',
                    f'train_dataloader.dataset.datasets.{i}.metainfo.classes={CLASSES}',
                    f'train_dataloader.dataset.datasets.{i}.pipeline.2.scales='
                    '[(192,128),(192,160)]']
    return options + tiny_options('train_dataloader.dataset.datasets.0.pipeline.2.scales', rois=8)


ENV = dict(PYTHON=python_cmd()[0], OMP_NUM_THREADS='1')


def read_log(work_dir):
    log = '\n'.join(open(p).read() for p in glob.glob(osp.join(work_dir, '*', '*.log')))
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    return log


def dist_train(config, work_dir, options):
    proc = run(['bash', 'tools/dist_train.sh', config, '2', '--work-dir', work_dir,
                '--cfg-options', *options], env=dict(ENV, PORT=str(free_port())), timeout=1500)
    return proc, read_log(work_dir)


def loaded_from(log, tensor, ckpt):
    block = log[log.index(tensor + ' - torch.Size'):][:400]
    return f'PretrainedInit: load from {ckpt}' in block


def check_coco_run(config, shapes_data, converted, tmp_path):
    options, ckpt = coco_options(shapes_data, converted, config)
    work_dir = str(tmp_path / 'work')
    proc, log = dist_train(osp.join(CONFIGS, config), work_dir, options)
    after = 'epoch 1' if config.endswith(('_1x_coco.py', '_2x_coco.py')) else 'iteration 2'
    assert (f'DetPreciseBNHook: re-estimated the statistics of {FPN_MASK_RCNN_BN} BatchNorm '
            f'layers over 2 training batches per process (after {after})') in log
    assert loaded_from(log, 'backbone.layer4.2.conv3.weight', ckpt)
    assert loaded_from(log, 'neck.lateral_convs.3.conv.weight', ckpt) == \
        ('_crosscl-fpn_' in config)
    # pycocotools' summary, bbox then segm, and the logged metrics
    assert proc.stdout.count('Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all') == 2
    final = [r for r in read_scalars(work_dir) if 'coco/bbox_mAP' in r][-1]
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP', 'coco/segm_mAP_50'):
        assert 0 <= final[key] <= 1, (key, final)


def test_coco_90k_protocol_trains_and_evaluates(shapes_data, converted, tmp_path):
    check_coco_run('mask-rcnn_r50-fpn_syncbn-all_crosscl-fpn_ms-90k_coco.py', shapes_data,
                   converted, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize('config', [
    'mask-rcnn_r50-fpn_syncbn-all_crosscl-fpn_ms-180k_coco.py',
    'mask-rcnn_r50-fpn_syncbn-all_crosscl_ms-90k_coco.py',
    'mask-rcnn_r50-fpn_syncbn-all_crosscl_ms-180k_coco.py',
    'mask-rcnn_r50-fpn_syncbn-all_crosscl-fpn_1x_coco.py',
    'mask-rcnn_r50-fpn_syncbn-all_crosscl-fpn_2x_coco.py',
    'mask-rcnn_r50-fpn_syncbn-all_crosscl_1x_coco.py',
])
def test_other_coco_configs_train_and_evaluate(config, shapes_data, converted, tmp_path):
    check_coco_run(config, shapes_data, converted, tmp_path)


def test_voc_protocol_trains_and_evaluates(shapes_data, converted, tmp_path):
    """Through the multi-trial runner, as a user runs it (voc_trials.py ->
    dist_train_voc.sh -> dist_train.sh), one trial."""
    ckpt, root = converted['backbone'], str(tmp_path / 'voc')
    proc = run(python_cmd('tools/benchmarks/mmdetection/voc_trials.py', ckpt, '--gpus', '2',
                          '--trials', '1', '--work-root', root, '--port', str(free_port()),
                          *voc_options(shapes_data)), env=ENV, timeout=1500)
    work_dir = osp.join(root, 'seed0')
    log = read_log(work_dir)
    assert (f'DetPreciseBNHook: re-estimated the statistics of {C4_FASTER_RCNN_BN} BatchNorm '
            'layers over 2 training batches per process (after iteration 2)') in log
    assert loaded_from(log, 'backbone.layer3.5.conv3.weight', ckpt)
    assert loaded_from(log, 'roi_head.shared_head.layer4.2.conv3.weight', ckpt)
    # VOCMetric's table per IoU names our classes, then AP = the mean over IoU 0.50:0.95
    assert 'iou_thr: 0.95' in log and '| circle' in log
    final = [r for r in read_scalars(work_dir) if 'pascal_voc/mAP' in r][-1]
    per_iou = [final[f'pascal_voc/AP{t}'] for t in range(50, 100, 5)]
    assert 0 <= final['pascal_voc/mAP'] <= 1
    assert final['pascal_voc/mAP'] == pytest.approx(sum(per_iou) / 10, abs=5e-4)  # AP50.. rounded
    # The runner's summary: AP50, AP, AP75 in percent over the 1 trial.
    summary = {line.split('|')[1].strip(): float(line.split('|')[2])
               for line in proc.stdout.splitlines() if line.startswith('| AP')}
    assert summary == pytest.approx({'AP50': 100 * final['pascal_voc/AP50'],
                                     'AP': 100 * final['pascal_voc/mAP'],
                                     'AP75': 100 * final['pascal_voc/AP75']}, abs=0.005)
