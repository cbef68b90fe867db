"""COCO and LVIS v1 instance annotations, checked before mmdet reads them.

mmdet's CocoDataset and LVISV1Dataset take a malformed file as far as it
goes: a box of three numbers fails with an unpacking error that names neither
the file nor the annotation, a negative width is silently dropped, an
annotation of an unknown image or category vanishes, and a broken polygon
only fails when an image is drawn, hours into training. Here the whole file
is checked first, and the first problem stops the run with the file, the
field and the index of the record (``annotations[12].bbox``).
"""
import json
import math
import numbers
from typing import Any, Dict, List, Optional

from mmdet.datasets import CocoDataset, LVISV1Dataset
from mmengine.fileio import get_local_path

from crosscl_mm.compat import apply_deferred, fix_lvis_numpy_float
from crosscl_mm.registry import DATASETS

# lvis 0.5.3's evaluation needs numpy's removed np.float; mmdet's LVISMetric
# and LVISV1Dataset import lvis, so the fix goes where they are used.
apply_deferred(fix_lvis_numpy_float)

# mmdet's LVISV1Dataset reads an image's path from its coco_url, minus this.
COCO_URL_PREFIX = 'http://images.cocodataset.org/'
LVIS_FREQUENCIES = ('r', 'c', 'f')


class AnnotationError(ValueError):
    """A malformed instance-annotation file: the message names the file, the
    field and the index of the record."""


def _is_int(value: Any) -> bool:
    return type(value) is int or (isinstance(value, numbers.Integral)
                                  and not isinstance(value, bool))


def _is_number(value: Any) -> bool:
    kind = type(value)
    if kind is float:  # the common cases first: COCO train has 860k annotations
        return math.isfinite(value)
    if kind is int:
        return True
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and \
        math.isfinite(value)


_KINDS = {'int': _is_int, 'number': _is_number, 'str': lambda v: isinstance(v, str),
          'list': lambda v: isinstance(v, list)}


class _Checker:

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, field: str, problem: str):
        raise AnnotationError(f'{self.path}: {field}: {problem}')

    def records(self, data: dict, key: str) -> List[dict]:
        if key not in data:
            self.fail(key, 'missing (an instances file has "images", "annotations" and '
                      '"categories")')
        records = data[key]
        if not isinstance(records, list):
            self.fail(key, f'must be a list, got {type(records).__name__}')
        for index, record in enumerate(records):
            if not isinstance(record, dict):
                self.fail(f'{key}[{index}]', f'must be an object, got {type(record).__name__}')
        return records

    def get(self, record: dict, field: str, key: str, kind: str) -> Any:
        if key not in record:
            self.fail(f'{field}.{key}', 'missing')
        value = record[key]
        if not _KINDS[kind](value):
            self.fail(f'{field}.{key}', f'must be {"a finite number" if kind == "number" else kind}'
                      f', got {value!r}'[:200])
        return value

    def unique_ids(self, records: List[dict], key: str) -> Dict[int, dict]:
        ids: Dict[int, dict] = {}
        for index, record in enumerate(records):
            value = self.get(record, f'{key}[{index}]', 'id', 'int')
            if value in ids:
                self.fail(f'{key}[{index}].id', f'{value} is used twice')
            ids[value] = record
        return ids

    def category_list(self, record: dict, field: str, key: str, categories: dict) -> None:
        for j, cat in enumerate(self.get(record, field, key, 'list')):
            if not _is_int(cat) or cat not in categories:
                self.fail(f'{field}.{key}[{j}]', f'{cat!r} is not the id of a category')

    def segmentation(self, value: Any, field: str, image: dict) -> None:
        if isinstance(value, list):
            if not value:
                self.fail(field, 'an empty list of polygons')
            for j, polygon in enumerate(value):
                if not isinstance(polygon, list) or len(polygon) < 6 or len(polygon) % 2 or \
                        not all(map(_is_number, polygon)):
                    self.fail(f'{field}[{j}]', 'a polygon must be a list of at least 3 (x, y) '
                              f'pairs of finite numbers, got {polygon!r}'[:200])
        elif isinstance(value, dict):
            size = value.get('size')
            if not (isinstance(size, list) and len(size) == 2 and all(_is_int(v) for v in size)):
                self.fail(f'{field}.size', f'an RLE needs size [height, width], got {size!r}')
            if size != [image['height'], image['width']]:
                self.fail(f'{field}.size', f'{size} is not the image\'s [height, width] '
                          f'[{image["height"]}, {image["width"]}]')
            counts = value.get('counts')
            if not (isinstance(counts, str) or
                    (isinstance(counts, list) and all(_is_int(v) and v >= 0 for v in counts))):
                self.fail(f'{field}.counts', 'an RLE needs counts, a string or a list of '
                          'non-negative integers')
        else:
            self.fail(field, 'must be a list of polygons or an RLE object, got '
                      f'{type(value).__name__}')


def check_instances_json(path: str, lvis: bool = False, data: Optional[dict] = None,
                         name: Optional[str] = None) -> dict:
    """Check a COCO (or, with ``lvis=True``, LVIS v1) instances file and return
    its content; raise :class:`AnnotationError` at the first problem.

    Checked: the three lists and their records' types; unique image,
    category and annotation ids; categories with an integer ``id`` and a
    ``name`` (LVIS: ``frequency`` 'r', 'c' or 'f'); images with positive
    integer ``width`` and ``height`` and a ``file_name`` (LVIS: a ``coco_url``
    under ``http://images.cocodataset.org/``, and ``neg_category_ids`` and
    ``not_exhaustive_category_ids`` naming known categories); annotations
    whose ``image_id`` and ``category_id`` exist, whose ``bbox`` is 4 finite
    numbers with a non-negative width and height, whose ``area`` is a
    non-negative number, ``iscrowd`` 0 or 1, and ``segmentation`` (required
    for LVIS) polygons of at least 3 points or an RLE of the image's size.

    Args:
        path: the file (read unless ``data`` is given).
        lvis: check LVIS v1's fields too.
        data: the file's content, already parsed.
        name: how to name the file in errors (default ``path``).
    """
    check = _Checker(name or path)
    if data is None:
        try:
            with open(path) as f:
                data = json.load(f)
        except json.JSONDecodeError as err:
            check.fail('(file)', f'not valid JSON ({err})')
    if not isinstance(data, dict):
        check.fail('(file)', f'must be a JSON object, got {type(data).__name__}')
    images = check.records(data, 'images')
    annotations = check.records(data, 'annotations')
    categories = check.unique_ids(check.records(data, 'categories'), 'categories')
    for index, cat in enumerate(data['categories']):
        field = f'categories[{index}]'
        check.get(cat, field, 'name', 'str')
        if lvis and cat.get('frequency') not in LVIS_FREQUENCIES:
            check.fail(f'{field}.frequency', f'must be one of {LVIS_FREQUENCIES} (LVIS\'s '
                       f'rare/common/frequent, for APr/APc/APf), got {cat.get("frequency")!r}')
    image_ids = check.unique_ids(images, 'images')
    for index, image in enumerate(images):
        field = f'images[{index}]'
        for key in ('width', 'height'):
            if check.get(image, field, key, 'int') < 1:
                check.fail(f'{field}.{key}', f'must be positive, got {image[key]}')
        if lvis:
            url = check.get(image, field, 'coco_url', 'str')
            if not url.startswith(COCO_URL_PREFIX) or url == COCO_URL_PREFIX:
                check.fail(f'{field}.coco_url', f'must start with {COCO_URL_PREFIX!r} (mmdet '
                           f'reads the image path after it, e.g. train2017/x.jpg), got {url!r}')
            for key in ('neg_category_ids', 'not_exhaustive_category_ids'):
                check.category_list(image, field, key, categories)
        elif not check.get(image, field, 'file_name', 'str'):
            check.fail(f'{field}.file_name', 'is empty')
    check.unique_ids(annotations, 'annotations')
    for index, ann in enumerate(annotations):
        field = f'annotations[{index}]'
        image_id = check.get(ann, field, 'image_id', 'int')
        if image_id not in image_ids:
            check.fail(f'{field}.image_id', f'{image_id} is not the id of an image')
        cat = check.get(ann, field, 'category_id', 'int')
        if cat not in categories:
            check.fail(f'{field}.category_id', f'{cat} is not the id of a category')
        bbox = check.get(ann, field, 'bbox', 'list')
        if len(bbox) != 4 or not all(map(_is_number, bbox)):
            check.fail(f'{field}.bbox', f'must be 4 finite numbers [x, y, width, height], '
                       f'got {bbox!r}'[:200])
        if bbox[2] < 0 or bbox[3] < 0:
            check.fail(f'{field}.bbox', f'negative width or height: {bbox}')
        if check.get(ann, field, 'area', 'number') < 0:
            check.fail(f'{field}.area', f'must not be negative, got {ann["area"]}')
        if ann.get('iscrowd', 0) not in (0, 1) or isinstance(ann.get('iscrowd'), bool):
            check.fail(f'{field}.iscrowd', f'must be 0 or 1, got {ann["iscrowd"]!r}')
        if lvis or 'segmentation' in ann:
            if 'segmentation' not in ann:
                check.fail(f'{field}.segmentation', 'missing')
            check.segmentation(ann['segmentation'], f'{field}.segmentation',
                               image_ids[image_id])
    return data


class _StrictLoading:
    """Checks ``ann_file`` before the mmdet dataset loads it."""

    LVIS = False

    def load_data_list(self) -> List[dict]:
        with get_local_path(self.ann_file, backend_args=self.backend_args) as local_path:
            check_instances_json(local_path, lvis=self.LVIS, name=self.ann_file)
        return super().load_data_list()


@DATASETS.register_module()
class StrictCocoDataset(_StrictLoading, CocoDataset):
    """mmdet's :class:`~mmdet.datasets.CocoDataset`, after
    :func:`check_instances_json` has accepted the file."""


@DATASETS.register_module()
class StrictLVISV1Dataset(_StrictLoading, LVISV1Dataset):
    """mmdet's :class:`~mmdet.datasets.LVISV1Dataset`, after
    :func:`check_instances_json` (``lvis=True``) has accepted the file."""

    LVIS = True
