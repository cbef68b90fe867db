"""Malformed COCO and LVIS v1 instance files stop with the file, the field and
the record's index (crosscl_mm.datasets.coco); well-formed ones load exactly as
mmdet's own datasets load them. The generated LVIS v1 copy is what LVIS v1 is."""
import copy
import json

import pytest

from crosscl_mm.datasets.coco import (AnnotationError, StrictCocoDataset, StrictLVISV1Dataset,
                                      check_instances_json)

CLASSES = ('circle', 'rectangle', 'triangle')


@pytest.fixture(scope='module')
def lvis_data(shapes_data, tmp_path_factory):
    from crosscl_mm.datasets.shapes_on_photos import write_lvis_copy
    root = str(tmp_path_factory.mktemp('lvis'))
    return dict(root=root, **write_lvis_copy(shapes_data['coco'], root))


def dataset(cls, root, ann_file, test_mode=True, prefix='images/'):
    return cls(data_root=root, ann_file=ann_file, data_prefix=dict(img=prefix),
               metainfo=dict(classes=CLASSES), test_mode=test_mode, pipeline=[])


def test_lvis_copy_has_lvis_v1_s_fields(shapes_data, lvis_data):
    coco = json.load(open(shapes_data['val']))
    lvis = json.load(open(lvis_data['val']))
    assert [c['frequency'] for c in lvis['categories']] == ['f', 'c', 'r']
    for img, src in zip(lvis['images'], coco['images']):
        assert img['coco_url'] == 'http://images.cocodataset.org/val2017/' + src['file_name']
        present = {a['category_id'] for a in coco['annotations'] if a['image_id'] == img['id']}
        assert set(img['neg_category_ids']) == {1, 2, 3} - present
        assert img['not_exhaustive_category_ids'] == []
    assert len(lvis['annotations']) == len(coco['annotations'])
    assert all('iscrowd' not in a for a in lvis['annotations'])
    # mmdet's LVISV1Dataset reads it: image paths from coco_url, labels by category
    loaded = dataset(StrictLVISV1Dataset, lvis_data['root'], 'annotations/lvis_v1_val.json',
                     prefix='')
    assert [d['img_path'] for d in loaded] == [
        f'{lvis_data["root"]}/val2017/{img["file_name"]}' for img in coco['images']]
    assert sum(len(d['instances']) for d in loaded) == len(coco['annotations'])


def test_well_formed_files_load_as_mmdet_loads_them(shapes_data, lvis_data):
    from mmdet.datasets import CocoDataset, LVISV1Dataset
    for ours, theirs, root, ann, prefix in (
            (StrictCocoDataset, CocoDataset, shapes_data['coco'], 'train.json', 'images/'),
            (StrictLVISV1Dataset, LVISV1Dataset, lvis_data['root'],
             'annotations/lvis_v1_train.json', '')):
        a = dataset(ours, root, ann, test_mode=False, prefix=prefix)
        b = dataset(theirs, root, ann, test_mode=False, prefix=prefix)
        assert len(a) == len(b) > 0
        assert [a.get_data_info(i) for i in range(len(a))] == \
            [b.get_data_info(i) for i in range(len(b))]


def set_path(data, path, value):
    """data['annotations'][2]['bbox'] = value for path ('annotations', 2, 'bbox');
    value DELETE removes the key."""
    node = data
    for key in path[:-1]:
        node = node[key]
    if value is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value


DELETE = object()
# (path, new value, the field the error must name, what it must say)
COMMON_CASES = [
    (('annotations', 2, 'bbox'), [1, 2, 3], 'annotations[2].bbox', 'must be 4 finite numbers'),
    (('annotations', 1, 'bbox'), [1, 2, -3, 4], 'annotations[1].bbox', 'negative width'),
    (('annotations', 1, 'bbox'), [1, 2, 'a', 4], 'annotations[1].bbox', 'must be 4'),
    (('annotations', 0, 'bbox'), DELETE, 'annotations[0].bbox', 'missing'),
    (('annotations', 3, 'category_id'), 99, 'annotations[3].category_id',
     '99 is not the id of a category'),
    (('annotations', 0, 'image_id'), 12345, 'annotations[0].image_id',
     '12345 is not the id of an image'),
    (('annotations', 0, 'image_id'), '1', 'annotations[0].image_id', 'must be int'),
    (('annotations', 1, 'area'), -1.0, 'annotations[1].area', 'must not be negative'),
    (('annotations', 2, 'segmentation'), [[1, 2, 3, 4]], 'annotations[2].segmentation[0]',
     'at least 3'),
    (('annotations', 2, 'segmentation'), [[1, 2, 3, 4, 5, 6, 7]],
     'annotations[2].segmentation[0]', 'at least 3'),
    (('annotations', 2, 'segmentation'), {'counts': 'abc', 'size': [5, 5]},
     'annotations[2].segmentation.size', "not the image's"),
    (('annotations', 2, 'segmentation'), 'polygon', 'annotations[2].segmentation',
     'must be a list of polygons or an RLE'),
    (('annotations', 1, 'id'), 1, 'annotations[1].id', 'used twice'),
    (('images', 1, 'width'), 0, 'images[1].width', 'must be positive'),
    (('images', 1, 'height'), 10.5, 'images[1].height', 'must be int'),
    (('categories', 0, 'name'), DELETE, 'categories[0].name', 'missing'),
    (('annotations',), {}, 'annotations', 'must be a list'),
    (('categories',), DELETE, 'categories', 'missing'),
]
COCO_CASES = COMMON_CASES + [
    (('images', 0, 'file_name'), DELETE, 'images[0].file_name', 'missing'),
    (('annotations', 0, 'iscrowd'), 2, 'annotations[0].iscrowd', 'must be 0 or 1'),
]
LVIS_CASES = COMMON_CASES + [
    (('categories', 2, 'frequency'), 'x', 'categories[2].frequency', "('r', 'c', 'f')"),
    (('images', 0, 'coco_url'), 'train2017/a.jpg', 'images[0].coco_url',
     "must start with 'http://images.cocodataset.org/'"),
    (('images', 1, 'neg_category_ids'), [1, 7], 'images[1].neg_category_ids[1]',
     '7 is not the id of a category'),
    (('images', 1, 'not_exhaustive_category_ids'), DELETE,
     'images[1].not_exhaustive_category_ids', 'missing'),
    (('annotations', 0, 'segmentation'), DELETE, 'annotations[0].segmentation', 'missing'),
]


def broken_file(src, tmp_path, path, value):
    data = json.load(open(src))
    assert len(data['annotations']) >= 4 and len(data['images']) >= 2
    data = copy.deepcopy(data)
    set_path(data, path, value)
    out = tmp_path / 'broken.json'
    out.write_text(json.dumps(data))
    return str(out)


CASES = [('coco',) + c for c in COCO_CASES] + [('lvis',) + c for c in LVIS_CASES]


@pytest.mark.parametrize('kind,path,value,field,problem', CASES,
                         ids=[f'{c[0]}-{c[3]}:{c[4][:12]}' for c in CASES])
def test_malformed_file_stops_with_file_field_and_index(shapes_data, lvis_data, tmp_path, kind,
                                                        path, value, field, problem):
    """The dataset of the configs refuses the file before mmdet reads it."""
    if kind == 'coco':
        ann_file = broken_file(shapes_data['train'], tmp_path, path, value)
        args = (StrictCocoDataset, shapes_data['coco'], ann_file)
    else:
        ann_file = broken_file(lvis_data['train'], tmp_path, path, value)
        args = (StrictLVISV1Dataset, lvis_data['root'], ann_file)
    with pytest.raises(AnnotationError) as err:
        dataset(*args, test_mode=False, prefix='images/' if kind == 'coco' else '')
    assert str(err.value).startswith(f'{ann_file}: {field}: ')
    assert problem in str(err.value)


def test_lvis_dataset_checks_before_loading(lvis_data, tmp_path):
    ann_file = broken_file(lvis_data['train'], tmp_path, ('annotations', 1, 'bbox'), [0, 0, 1])
    with pytest.raises(AnnotationError, match=r'annotations\[1\]\.bbox'):
        dataset(StrictLVISV1Dataset, lvis_data['root'], ann_file, prefix='')
    # the COCO check alone does not ask for LVIS's fields
    check_instances_json(lvis_data['train'], lvis=True)
    with pytest.raises(AnnotationError, match=r'images\[0\]\.file_name: missing'):
        check_instances_json(lvis_data['train'])


def test_not_json_names_the_file(tmp_path):
    path = tmp_path / 'x.json'
    path.write_text('{"images": [')
    with pytest.raises(AnnotationError, match=f'{path}: \\(file\\): not valid JSON'):
        check_instances_json(str(path))
