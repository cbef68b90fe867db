"""Pascal VOC as the reference's detectron2 protocol reads it, with errors that
name the file and the field."""
import math
import os.path as osp
import xml.etree.ElementTree as ET
from typing import List

from mmdet.datasets import VOCDataset
from mmengine.fileio import get_local_path

from crosscl_mm.registry import DATASETS

BOX_FIELDS = ('xmin', 'ymin', 'xmax', 'ymax')


class _FieldError(ValueError):
    """A bad field of one annotation file; :meth:`StrictVOCDataset.parse_data_info`
    adds the file."""


def _required_text(element: ET.Element, path: str, field: str) -> str:
    node = element.find(path)
    if node is None or node.text is None or not node.text.strip():
        raise _FieldError(f'{field} is missing')
    return node.text.strip()


def _number(element: ET.Element, path: str, field: str) -> float:
    text = _required_text(element, path, field)
    try:
        value = float(text)
    except ValueError:
        raise _FieldError(f'{field}={text!r} is not a number') from None
    if not math.isfinite(value):
        raise _FieldError(f'{field}={text!r} is not finite')
    return value


@DATASETS.register_module()
class StrictVOCDataset(VOCDataset):
    """mmdet's :class:`~mmdet.datasets.VOCDataset` with detectron2's treatment
    of difficult objects and strict parsing.

    - Difficult objects (``<difficult>1</difficult>``) are training targets
      and are excluded from evaluation, as in detectron2
      (``data/datasets/pascal_voc.py`` keeps them; the VOC evaluator counts
      them neither as positives nor as false positives). mmdet's VOCDataset
      marks them ``ignore_flag=1`` in training too, which drops them from the
      targets. Here ``ignore_flag`` is 1 for a difficult object only in
      ``test_mode`` (where mmdet's VOCMetric excludes it) or with
      ``train_on_difficult=False``.
    - An object whose class is not in ``metainfo.classes``, a missing or
      non-numeric box coordinate, a box with ``xmax < xmin`` or ``ymax < ymin``,
      a ``difficult`` other than 0/1, a bad ``size`` or a file that is not
      XML raise ``ValueError`` naming the file and the field. mmdet's
      VOCDataset skips an unknown class silently, takes an inverted box as it
      is, and fails on a missing or non-numeric field with an error that names
      neither the file nor the field. (To train on a subset of the classes,
      use mmdet's VOCDataset.)

    A dataset whose ``metainfo.classes`` are not VOC's 20 gets no
    ``dataset_type``, so that mmdet's VOCMetric reports its classes by their
    own names.

    Boxes follow mmdet's convention (every coordinate minus one); mmdet's
    VOCMetric measures IoU with the ``+1`` of the VOC devkit, so the
    evaluation equals detectron2's (tested in ``tests/test_voc_protocol.py``).

    Args:
        train_on_difficult: whether difficult objects are training targets.
            Defaults to True (detectron2).
        **kwargs: :class:`~mmdet.datasets.VOCDataset`'s arguments.
    """

    def __init__(self, train_on_difficult: bool = True, **kwargs) -> None:
        self.train_on_difficult = train_on_difficult
        super().__init__(**kwargs)
        if tuple(self._metainfo['classes']) != tuple(VOCDataset.METAINFO['classes']):
            # VOCMetric names the classes of a 'VOC2007'/'VOC2012' dataset
            # after VOC's 20; other classes keep their own names.
            self._metainfo['dataset_type'] = None

    def parse_data_info(self, img_info: dict) -> dict:
        xml_path = img_info['xml_path']
        try:
            with get_local_path(xml_path, backend_args=self.backend_args) as local_path:
                root = ET.parse(local_path).getroot()
            if root.find('size') is None:
                # mmdet reads the size from the image (and parses objects below).
                return super().parse_data_info(img_info)
            width, height = (_number(root, f'size/{k}', f'size.{k}') for k in ('width', 'height'))
            if width < 1 or height < 1:
                raise _FieldError(f'size must be positive, got width={width:g}, '
                                  f'height={height:g}')
            instances = self._parse_instance_info(root)
        except ET.ParseError as err:
            raise ValueError(f'{xml_path}: not well-formed XML ({err})') from None
        except _FieldError as err:
            raise ValueError(f'{xml_path}: {err}') from None
        return dict(img_path=osp.join(self.sub_data_root, img_info['file_name']),
                    img_id=img_info['img_id'], xml_path=xml_path,
                    width=int(width), height=int(height), instances=instances)

    def _parse_instance_info(self, raw_ann_info, minus_one: bool = True) -> List[dict]:
        root = raw_ann_info.getroot() if isinstance(raw_ann_info, ET.ElementTree) \
            else raw_ann_info
        instances = []
        for index, obj in enumerate(root.findall('object')):
            field = f'object[{index}]'
            name = _required_text(obj, 'name', f'{field}.name')
            if name not in self.cat2label:
                raise _FieldError(f'{field}.name={name!r} is not one of the classes '
                                  f'{tuple(self.cat2label)}')
            difficult = obj.find('difficult')
            difficult = 0 if difficult is None else _number(obj, 'difficult',
                                                            f'{field}.difficult')
            if difficult not in (0, 1):
                raise _FieldError(f'{field}.difficult must be 0 or 1, got {difficult:g}')
            if obj.find('bndbox') is None:
                raise _FieldError(f'{field}.bndbox is missing')
            box = [_number(obj, f'bndbox/{k}', f'{field}.bndbox.{k}') for k in BOX_FIELDS]
            if box[2] < box[0] or box[3] < box[1]:
                raise _FieldError(f'{field}.bndbox has xmax < xmin or ymax < ymin: '
                                  + ', '.join(f'{k}={v:g}' for k, v in zip(BOX_FIELDS, box)))
            # mmdet's reading: truncate, then 1-based inclusive -> 0-based.
            bbox = [int(v) - int(minus_one) for v in box]
            ignore = bool(difficult) and (self.test_mode or not self.train_on_difficult)
            if self.bbox_min_size is not None and not self.test_mode:  # as mmdet's filter_cfg
                ignore |= min(bbox[2] - bbox[0], bbox[3] - bbox[1]) < self.bbox_min_size
            instances.append(dict(bbox=bbox, bbox_label=self.cat2label[name],
                                  ignore_flag=int(ignore)))
        return instances
