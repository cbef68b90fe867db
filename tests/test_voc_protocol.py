"""VOC as the reference's detectron2 protocol reads it: the generated VOC copy,
difficult objects trained on and left out of evaluation, the evaluation equal
to detectron2's VOC evaluator, and malformed annotations refused with the
file and the field named."""
import json
import os
import os.path as osp
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch

import crosscl_mm  # noqa: F401
from conftest import REPO

CLASSES = ('circle', 'rectangle', 'triangle')
VOC_CONFIG = osp.join(REPO, 'configs', 'benchmarks', 'mmdetection',
                      'faster-rcnn_r50-c4_syncbn_crosscl_24k_voc0712.py')


def read_xml(path):
    """(name, difficult, [xmin, ymin, xmax, ymax]) per object, read directly."""
    root = ET.parse(path).getroot()
    return [(o.findtext('name'), int(o.findtext('difficult')),
             [int(o.find('bndbox').findtext(k)) for k in ('xmin', 'ymin', 'xmax', 'ymax')])
            for o in root.findall('object')]


def voc_dataset(voc_root, image_set, test_mode, year='VOC2007', cls='crosscl_mm',
                pipeline=(), classes=CLASSES):
    from mmdet.datasets import VOCDataset
    from crosscl_mm.datasets.voc import StrictVOCDataset
    dataset_cls = StrictVOCDataset if cls == 'crosscl_mm' else VOCDataset
    return dataset_cls(data_root=voc_root, ann_file=f'{year}/ImageSets/Main/{image_set}.txt',
                       data_prefix=dict(sub_data_root=f'{year}/'), test_mode=test_mode,
                       metainfo=dict(classes=classes), pipeline=list(pipeline))


def test_voc_copy_has_the_coco_boxes_in_voc_pixel_indices(shapes_data):
    voc = shapes_data['voc']
    coco = {s: json.load(open(shapes_data[s])) for s in ('train', 'val')}
    sets = {name: open(path).read().split() for name, path in shapes_data['image_sets'].items()}
    assert sets['VOC2007/trainval'] == ['train_00001', 'train_00002']
    assert sets['VOC2012/trainval'] == ['train_00003', 'train_00004']
    assert sets['VOC2007/test'] == [f'val_{i:05d}' for i in range(5, 9)]
    names = {c['id']: c['name'] for c in coco['train']['categories']}
    count = 0
    for split, year_sets in (('train', ('VOC2007/trainval', 'VOC2012/trainval')),
                             ('val', ('VOC2007/test',))):
        for img in coco[split]['images']:
            stem = osp.splitext(img['file_name'])[0]
            year = next(s.split('/')[0] for s in year_sets if stem in sets[s])
            assert osp.getsize(osp.join(voc, year, 'JPEGImages', stem + '.jpg')) == \
                osp.getsize(osp.join(shapes_data['coco'], 'images', img['file_name']))
            objects = read_xml(osp.join(voc, year, 'Annotations', stem + '.xml'))
            anns = [a for a in coco[split]['annotations'] if a['image_id'] == img['id']]
            assert len(objects) == len(anns) > 0
            for (name, difficult, box), ann in zip(objects, anns):
                count += 1
                x, y, w, h = ann['bbox']
                # 1-based inclusive pixel indices: detectron2 reads (xmin - 1, ymin - 1, xmax, ymax)
                assert [box[0] - 1, box[1] - 1, box[2], box[3]] == \
                    [round(x), round(y), round(x + w), round(y + h)]
                assert name == names[ann['category_id']]
                assert difficult == (count % 4 == 0)
    assert count >= 8


def test_difficult_objects_are_trained_on_and_ignored_in_evaluation(shapes_data):
    """Training keeps every object as a target (detectron2's pascal_voc.py);
    test mode marks difficult ones ignored (its evaluator skips them). mmdet's
    own VOCDataset drops them from training too."""
    from mmdet.datasets.transforms import LoadAnnotations, PackDetInputs
    voc = shapes_data['voc']
    ids = open(shapes_data['image_sets']['VOC2007/test']).read().split()
    expected = [read_xml(osp.join(voc, 'VOC2007', 'Annotations', i + '.xml')) for i in ids]
    assert sum(d for objs in expected for _, d, _ in objs) >= 1
    train = voc_dataset(voc, 'test', test_mode=False)
    test = voc_dataset(voc, 'test', test_mode=True)
    mmdet = voc_dataset(voc, 'test', test_mode=False, cls='mmdet')
    assert len(train) == len(test) == len(ids)
    for i, objs in enumerate(expected):
        boxes = [[v - 1 for v in box] for _, _, box in objs]  # mmdet's reading: all minus one
        labels = [CLASSES.index(name) for name, _, _ in objs]
        for dataset, ignored in ((train, [0] * len(objs)), (test, [d for _, d, _ in objs]),
                                 (mmdet, [d for _, d, _ in objs])):
            instances = dataset.get_data_info(i)['instances']
            assert [x['bbox'] for x in instances] == boxes
            assert [x['bbox_label'] for x in instances] == labels
            assert [x['ignore_flag'] for x in instances] == ignored
    # What the detector is trained on: every box, the difficult ones included.
    train.pipeline.transforms[:] = [LoadAnnotations(with_bbox=True), PackDetInputs()]
    for i, objs in enumerate(expected):
        info = train.get_data_info(i)
        packed = train.pipeline(dict(info, img=np.zeros((128, 160, 3), np.uint8),
                                     img_shape=(128, 160), ori_shape=(128, 160)))
        sample = packed['data_samples']
        assert len(sample.gt_instances) == len(objs) and len(sample.ignored_instances) == 0
    assert test.metainfo['dataset_type'] is None  # VOCMetric then uses our class names


def d2_voc_eval(gts, dets, classname, ovthresh):
    """detectron2/evaluation/pascal_voc_evaluation.py voc_eval (use_07_metric=True),
    written out: ``gts[image] = [(name, difficult, [xmin, ymin, xmax, ymax])]`` as
    in the XML; ``dets = [(image, score, box)]`` of this class in detectron2's
    file coordinates."""
    class_recs, npos = {}, 0
    for image, objs in gts.items():
        R = [o for o in objs if o[0] == classname]
        difficult = np.array([o[1] for o in R]).astype(bool)
        npos += int((~difficult).sum())
        class_recs[image] = dict(bbox=np.array([o[2] for o in R], dtype=float).reshape(-1, 4),
                                 difficult=difficult, det=[False] * len(R))
    dets = sorted(dets, key=lambda d: -d[1])
    tp, fp = np.zeros(len(dets)), np.zeros(len(dets))
    for d, (image, _, bb) in enumerate(dets):
        R = class_recs[image]
        ovmax, BBGT = -np.inf, R['bbox']
        if BBGT.size > 0:
            iw = np.maximum(np.minimum(BBGT[:, 2], bb[2]) - np.maximum(BBGT[:, 0], bb[0]) + 1., 0.)
            ih = np.maximum(np.minimum(BBGT[:, 3], bb[3]) - np.maximum(BBGT[:, 1], bb[1]) + 1., 0.)
            inters = iw * ih
            uni = (bb[2] - bb[0] + 1.) * (bb[3] - bb[1] + 1.) + \
                (BBGT[:, 2] - BBGT[:, 0] + 1.) * (BBGT[:, 3] - BBGT[:, 1] + 1.) - inters
            overlaps = inters / uni
            ovmax, jmax = np.max(overlaps), np.argmax(overlaps)
        if ovmax > ovthresh:
            if not R['difficult'][jmax]:
                if not R['det'][jmax]:
                    tp[d], R['det'][jmax] = 1., True
                else:
                    fp[d] = 1.
        else:
            fp[d] = 1.
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    rec = tp / float(npos)
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    ap = 0.
    for t in np.arange(0., 1.1, 0.1):
        ap += (np.max(prec[rec >= t]) if np.sum(rec >= t) else 0.) / 11.
    return ap


def write_voc(root, images):
    """``images[id] = (width, height, [(name, difficult, box)])`` -> VOC2007 test set."""
    for sub in ('Annotations', 'ImageSets/Main'):
        os.makedirs(osp.join(root, 'VOC2007', sub), exist_ok=True)
    for image, (w, h, objs) in images.items():
        body = ''.join(
            f'<object><name>{n}</name><difficult>{d}</difficult><bndbox><xmin>{b[0]}</xmin>'
            f'<ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>'
            for n, d, b in objs)
        with open(osp.join(root, 'VOC2007', 'Annotations', f'{image}.xml'), 'w') as f:
            f.write(f'<annotation><size><width>{w}</width><height>{h}</height></size>'
                    f'{body}</annotation>')
    with open(osp.join(root, 'VOC2007', 'ImageSets', 'Main', 'test.txt'), 'w') as f:
        f.write('\n'.join(images) + '\n')


def instances(annotations):
    return dict(bboxes=torch.tensor([x['bbox'] for x in annotations],
                                    dtype=torch.float32).reshape(-1, 4),
                labels=torch.tensor([x['bbox_label'] for x in annotations], dtype=torch.long))


def test_voc_evaluation_equals_detectron2s(tmp_path):
    """The VOC config's evaluator on StrictVOCDataset's test-mode annotations
    reports detectron2's PascalVOCDetectionEvaluator numbers: AP (11-point AP
    averaged over IoU 0.50:0.95), AP50, AP75, difficult objects excluded.
    mmdet's box is detectron2's plus one pixel at the right and bottom edge
    (their training targets differ by exactly that), so a prediction (x1, y1,
    x2, y2) of mmdet's is written to detectron2's result file as detectron2's
    evaluator writes its own (xmin + 1, ymin + 1, xmax, ymax): (x1 + 1, y1 + 1,
    x2 + 1, y2 + 1)."""
    from mmengine.config import Config
    from mmdet.registry import METRICS
    rng = np.random.default_rng(0)
    images, preds = {}, {}
    for k in range(12):
        w, h = int(rng.integers(200, 400)), int(rng.integers(200, 400))
        objs = []
        for _ in range(int(rng.integers(1, 6))):
            x0, y0 = int(rng.integers(1, w - 60)), int(rng.integers(1, h - 60))
            box = [x0, y0, x0 + int(rng.integers(10, 60)), y0 + int(rng.integers(10, 60))]
            objs.append((CLASSES[int(rng.integers(3))], int(rng.random() < 0.3), box))
        images[f'img{k:02d}'] = (w, h, objs)
        dets = []
        for name, _, box in objs:
            for _ in range(int(rng.integers(0, 3))):  # duplicates become false positives
                size = np.array([box[2] - box[0], box[3] - box[1]] * 2, dtype=float)
                label = CLASSES.index(name) if rng.random() < 0.85 else int(rng.integers(3))
                dets.append((np.array(box, float) - 1 + rng.normal(0, 0.08, 4) * size, label))
        for _ in range(2):  # background detections
            x0, y0 = rng.uniform(0, w - 50), rng.uniform(0, h - 50)
            dets.append((np.array([x0, y0, x0 + rng.uniform(5, 50), y0 + rng.uniform(5, 50)]),
                         int(rng.integers(3))))
        preds[f'img{k:02d}'] = dets
    for name in CLASSES:  # every class has a positive (detectron2 divides by it)
        assert any(n == name and not d for _, _, objs in images.values() for n, d, _ in objs)
    write_voc(str(tmp_path), images)

    from mmengine.registry import DefaultScope
    cfg = Config.fromfile(VOC_CONFIG)
    with DefaultScope.overwrite_default_scope('mmdet'):
        metric = METRICS.build(cfg.val_evaluator)
    dataset = voc_dataset(str(tmp_path), 'test', test_mode=True)
    metric.dataset_meta = dataset.metainfo
    scores = iter(rng.permutation(10000)[:sum(len(d) for d in preds.values())] / 10000)
    d2_dets = {name: [] for name in CLASSES}
    samples = []
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        keep = [x for x in info['instances'] if not x['ignore_flag']]
        ignored = [x for x in info['instances'] if x['ignore_flag']]
        dets = [(box, label, next(scores)) for box, label in preds[info['img_id']]]
        samples.append(dict(
            gt_instances=instances(keep), ignored_instances=instances(ignored),
            pred_instances=dict(bboxes=torch.tensor(np.array([d[0] for d in dets]),
                                                    dtype=torch.float64),
                                labels=torch.tensor([d[1] for d in dets]),
                                scores=torch.tensor([d[2] for d in dets]))))
        for box, label, score in dets:
            d2_dets[CLASSES[label]].append((info['img_id'], score, box + [1, 1, 1, 1]))
    metric.process({}, samples)
    ours = metric.compute_metrics(metric.results)

    gts = {image: objs for image, (_, _, objs) in images.items()}
    aps = {t: np.mean([d2_voc_eval(gts, d2_dets[c], c, t / 100) for c in CLASSES]) * 100
           for t in range(50, 100, 5)}
    d2 = dict(AP=np.mean(list(aps.values())), AP50=aps[50], AP75=aps[75])
    assert 5 < d2['AP'] < 95 and d2['AP50'] > d2['AP75']  # a test that can tell them apart
    assert ours['mAP'] * 100 == pytest.approx(d2['AP'], abs=1e-6)
    assert ours['AP50'] * 100 == pytest.approx(d2['AP50'], abs=0.05)  # VOCMetric rounds to 1e-3
    assert ours['AP75'] * 100 == pytest.approx(d2['AP75'], abs=0.05)


GOOD = ('<object><name>circle</name><difficult>0</difficult><bndbox><xmin>3</xmin>'
        '<ymin>4</ymin><xmax>30</xmax><ymax>40</ymax></bndbox></object>')
BAD_XML = {
    'unknown class': (GOOD.replace('circle', 'cirlce'),
                      "object[1].name='cirlce' is not one of the classes"),
    'non-numeric coordinate': (GOOD.replace('<xmax>30</xmax>', '<xmax>3O</xmax>'),
                               "object[1].bndbox.xmax='3O' is not a number"),
    'missing coordinate': (GOOD.replace('<ymin>4</ymin>', ''), 'object[1].bndbox.ymin is missing'),
    'inverted box': (GOOD.replace('<xmax>30</xmax>', '<xmax>2</xmax>'),
                     'object[1].bndbox has xmax < xmin or ymax < ymin: xmin=3, ymin=4, xmax=2'),
    'missing box': (GOOD.replace('<bndbox><xmin>3</xmin><ymin>4</ymin><xmax>30</xmax>'
                                 '<ymax>40</ymax></bndbox>', ''), 'object[1].bndbox is missing'),
    'difficult not 0/1': (GOOD.replace('<difficult>0</difficult>', '<difficult>2</difficult>'),
                          'object[1].difficult must be 0 or 1, got 2'),
    'broken XML': (GOOD.replace('</object>', ''), 'not well-formed XML'),
}


@pytest.mark.parametrize('case', sorted(BAD_XML))
def test_malformed_annotation_stops_naming_file_and_field(tmp_path, case):
    """One good image, then one whose second object is broken."""
    obj, message = BAD_XML[case]
    write_voc(str(tmp_path), {'good': (64, 64, []), 'bad': (64, 64, [])})
    ann = osp.join(str(tmp_path), 'VOC2007', 'Annotations')
    for image, body in (('good', GOOD), ('bad', GOOD + obj)):
        with open(osp.join(ann, f'{image}.xml'), 'w') as f:
            f.write(f'<annotation><size><width>64</width><height>64</height></size>{body}'
                    '</annotation>')
    with pytest.raises(ValueError) as err:
        voc_dataset(str(tmp_path), 'test', test_mode=False)
    assert str(err.value).startswith(osp.join(str(tmp_path), 'VOC2007', 'Annotations', 'bad.xml'))
    assert message in str(err.value)


def test_mmdet_voc_dataset_skips_an_unknown_class_silently(tmp_path):
    """Why StrictVOCDataset exists: mmdet's VOCDataset drops the misspelt
    object without a word, and takes an inverted box as it is."""
    write_voc(str(tmp_path), {'img': (64, 64, [('cirlce', 0, [3, 4, 30, 40]),
                                               ('circle', 0, [30, 4, 3, 40])])})
    instances = voc_dataset(str(tmp_path), 'test', test_mode=False,
                            cls='mmdet').get_data_info(0)['instances']
    assert [x['bbox'] for x in instances] == [[29, 3, 2, 39]]


def test_res5_head_is_layer4_then_an_extra_norm(tmp_path):
    """detectron2's Res5ROIHeadsExtraNorm: res5, then one more norm of the
    head's norm type over its 2048 channels; built from the VOC config's
    `crosscl_mm.ResLayerExtraNorm` and initialised from a converted checkpoint's
    layer4 (prefix 'backbone.') as the config does."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmdet.models.roi_heads.shared_heads import ResLayer
    from mmdet.registry import MODELS
    cfg = Config.fromfile(VOC_CONFIG).model.roi_head.shared_head
    assert cfg.type == 'crosscl_mm.ResLayerExtraNorm' and cfg.norm_cfg.type == 'SyncBN'
    torch.manual_seed(0)
    plain = ResLayer(depth=50, stage=3, style='pytorch', norm_cfg=dict(type='BN'), norm_eval=False)
    ckpt = str(tmp_path / 'converted.pth')
    torch.save({'state_dict': {'backbone.' + k: v for k, v in plain.state_dict().items()}}, ckpt)
    cfg.update(norm_cfg=dict(type='BN'), init_cfg=dict(cfg.init_cfg, checkpoint=ckpt))
    with DefaultScope.overwrite_default_scope('mmdet'):
        head = MODELS.build(cfg)
    head.init_weights()
    assert sorted(set(head.state_dict()) - set(plain.state_dict())) == \
        ['norm.bias', 'norm.num_batches_tracked', 'norm.running_mean', 'norm.running_var',
         'norm.weight']
    for k, v in plain.state_dict().items():
        assert torch.equal(head.state_dict()[k], v), k
    with torch.no_grad():
        head.norm.weight.uniform_(0.5, 1.5)
        head.norm.bias.uniform_(-1, 1)
    x = torch.randn(2, 1024, 6, 6)
    head.train(), plain.train()
    out = head(x)
    y = plain(x)
    mean, var = y.mean((0, 2, 3)), y.var((0, 2, 3), unbiased=False)
    expected = (y - mean[:, None, None]) / torch.sqrt(var[:, None, None] + 1e-5) * \
        head.norm.weight[:, None, None] + head.norm.bias[:, None, None]
    assert out.shape == (2, 2048, 3, 3)
    assert torch.allclose(out, expected, atol=1e-4)
