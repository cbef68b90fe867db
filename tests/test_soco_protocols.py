"""SoCo's two remaining protocols train and evaluate on the CPU: Mask R-CNN
R50-C4 on COCO from a converted SoCo-C4 checkpoint (backbone and res5 head),
and Mask R-CNN R50-FPN on LVIS v1 from a converted SoCo checkpoint (backbone,
FPN, box head), each for two iterations at about 120x96 on the generated
shapes data (COCO format; its LVIS v1-format copy), Precise BN before the real
evaluator: pycocotools' COCO AP, the LVIS API's federated AP with APr/APc/APf."""
import json
import math
import os.path as osp

import pytest
import torch

from conftest import REPO
from protocol_run import dataset_options, tiny_options, train_protocol
from test_benchmark_configs_train import C4_FASTER_RCNN_BN, FPN_MASK_RCNN_BN, loaded_from
from test_soco_c4_converter import soco_c4_state  # noqa: F401  (a fixture)
from test_soco_converter import soco_r50

CONFIGS = osp.join(REPO, 'configs', 'benchmarks', 'mmdetection')
C4_LEAF = osp.join(CONFIGS, 'mask-rcnn_r50-c4_syncbn_soco-c4_soco-ms-90k_coco.py')
LVIS_LEAF = osp.join(CONFIGS,
                     'mask-rcnn_r50-fpn-4conv1fc_syncbn-all_soco-fpn_soco-ms-90k_lvis-v1.py')


def converted(ckpt, path, **kwargs):
    from crosscl_mm.converters.encoder_weights import convert, serialise
    with open(path, 'wb') as f:
        serialise(convert(ckpt, 'mmdet', **kwargs), 'mmdet', 'test', f)
    return path


def decays(runner):
    return sorted({g['weight_decay'] for g in runner.optim_wrapper.optimizer.param_groups})


def test_soco_c4_coco_protocol_trains_and_evaluates(shapes_data, soco_c4_state,  # noqa: F811
                                                    tmp_path, one_thread):
    ckpt = converted({'state_dict': soco_c4_state}, str(tmp_path / 'soco_c4_mmdet.pth'), c4=True)
    options = dict(dataset_options(shapes_data['coco'] + '/', 'train.json', 'val.json', 'images/',
                                   shapes_data['val']),
                   **tiny_options('train_dataloader.dataset.pipeline.2.scales', rois=8))
    # res5 runs once per RoI and again per detection for its mask (~1.6 GFLOP each)
    options.update({'model.backbone.init_cfg.checkpoint': ckpt,
                    'model.roi_head.shared_head.init_cfg.checkpoint': ckpt,
                    'model.test_cfg.rcnn.max_per_img': 8})
    runner, log, metrics = train_protocol(C4_LEAF, str(tmp_path / 'work'), options)
    assert loaded_from(log, 'backbone.layer3.5.conv3.weight', ckpt)
    assert loaded_from(log, 'roi_head.shared_head.layer4.2.conv3.weight', ckpt)
    assert not loaded_from(log, 'roi_head.shared_head.norm.weight', ckpt)  # the extra norm
    assert (f'DetPreciseBNHook: re-estimated the statistics of {C4_FASTER_RCNN_BN} BatchNorm '
            'layers over 2 training batches per process (after iteration 2)') in log
    # detectron2 v0.3: norms 0, non-norm biases 1e-4 (WEIGHT_DECAY_BIAS), weights 2.5e-5
    assert decays(runner) == [0.0, 2.5e-5, 1e-4]
    head = runner.model.roi_head.shared_head
    assert head.norm.weight.shape == (2048,) and runner.model.roi_head.mask_head.num_convs == 0
    # pycocotools' bbox and segm summaries, on the 4 validation images
    assert 'bbox_mAP_copypaste' in log and 'segm_mAP_copypaste' in log
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP', 'coco/segm_mAP_50'):
        assert 0 <= metrics[key] <= 1, (key, metrics)


def test_soco_lvis_protocol_trains_and_evaluates(shapes_data, tmp_path, one_thread):
    from crosscl_mm.datasets import RepeatFactorInfiniteSampler
    from crosscl_mm.datasets.shapes_on_photos import write_lvis_copy
    root = str(tmp_path / 'lvis')
    anns = write_lvis_copy(shapes_data['coco'], root)
    val = json.load(open(anns['val']))
    assert {a['category_id'] for a in val['annotations']} == {1, 2, 3}  # one per frequency
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('crosscl_mm'):  # after a runner set 'mmdet'
        model = soco_r50()
    ckpt = converted({'state_dict': model.state_dict()}, str(tmp_path / 'soco_mmdet.pth'),
                     with_fpn=True, with_box_head=True)
    options = dict(dataset_options(root + '/', 'annotations/lvis_v1_train.json',
                                   'annotations/lvis_v1_val.json', '', anns['val']),
                   **tiny_options('train_dataloader.dataset.pipeline.2.scales'))
    options.update({'model.backbone.init_cfg.checkpoint': ckpt,
                    'model.neck.init_cfg.0.checkpoint': ckpt,
                    'model.roi_head.bbox_head.init_cfg.2.checkpoint': ckpt,
                    # 4 images: every category is in half or more of them, which
                    # 0.001 never repeats; 0.6 repeats the rarer ones.
                    'train_dataloader.sampler.repeat_thresh': 0.6})
    runner, log, metrics = train_protocol(LVIS_LEAF, str(tmp_path / 'work'), options)
    assert loaded_from(log, 'neck.lateral_convs.0.conv.weight', ckpt)
    assert loaded_from(log, 'roi_head.bbox_head.shared_convs.3.conv.weight', ckpt)
    assert not loaded_from(log, 'roi_head.bbox_head.fc_cls.weight', ckpt)
    assert (f'DetPreciseBNHook: re-estimated the statistics of {FPN_MASK_RCNN_BN} BatchNorm '
            'layers over 2 training batches per process (after iteration 2)') in log
    assert decays(runner) == [0.0, 2.5e-5, 1e-4]
    # The sampler's repeat factors, computed here from the training file.
    sampler = runner.train_dataloader.batch_sampler.sampler
    assert isinstance(sampler, RepeatFactorInfiniteSampler)
    train = json.load(open(anns['train']))
    cats = {img['id']: {a['category_id'] for a in train['annotations']
                        if a['image_id'] == img['id']} for img in train['images']}
    freq = {c['id']: sum(c['id'] in s for s in cats.values()) / len(cats)
            for c in train['categories']}
    expected = [max(max(1, math.sqrt(0.6 / freq[c])) for c in cats[img['id']])
                for img in train['images']]
    assert sampler.repeat_factors.tolist() == pytest.approx(expected, rel=1e-6)
    assert max(expected) > 1
    # The LVIS API's evaluation: at most 300 detections per image were kept,
    # and with one category per frequency group AP is the mean of APr, APc, APf.
    assert runner.model.test_cfg.rcnn.max_per_img == 300
    for kind in ('bbox', 'segm'):
        ap = [metrics[f'lvis/{kind}_AP{g}'] for g in ('r', 'c', 'f')]
        assert all(0 <= v <= 1 for v in ap), metrics
        assert metrics[f'lvis/{kind}_AP'] == pytest.approx(sum(ap) / 3, abs=2e-3)
    assert 'APr' in log and 'APf' in log
    assert torch.isfinite(torch.tensor([metrics['lvis/bbox_AP'], metrics['lvis/segm_AP']])).all()


def test_protocol_files_name_these_configs_and_the_readme_s_numbers():
    import yaml
    expected = {'soco_mask-rcnn_r50-c4_90k_coco': ('coco', 'soco-c4', C4_LEAF, dict(c4=True)),
                'soco_mask-rcnn_r50-fpn_90k_lvis-v1': (
                    'lvis_v1', 'soco-fpn', LVIS_LEAF, dict(with_fpn=True, with_box_head=True))}
    for name, (dataset, method, leaf, convert) in expected.items():
        with open(osp.join(REPO, 'configs', 'benchmarks', 'protocols', name + '.yml')) as f:
            protocol = yaml.safe_load(f)
        assert protocol['name'] == name and protocol['dataset'] == dataset
        assert list(protocol['leaves']) == [method]
        assert osp.join(REPO, protocol['leaves'][method]['config']) == leaf
        assert protocol['leaves'][method]['convert'] == dict(to='mmdet', **convert)
        assert {p['method'] for p in protocol['published']} == {method}
    c4 = yaml.safe_load(open(osp.join(REPO, 'configs', 'benchmarks', 'protocols',
                                      'soco_mask-rcnn_r50-c4_90k_coco.yml')))
    assert c4['published'][0]['bbox_AP'] == 40.9 and c4['published'][0]['segm_AP'] == 35.3
