# mmdet's COCO instance data (mmdet::_base_/datasets/coco_instance.py) read through
# crosscl_mm.StrictCocoDataset: mmdet's CocoDataset that stops on a malformed
# annotation file, naming the file, the field and the index.
_base_ = 'mmdet::_base_/datasets/coco_instance.py'

dataset_type = 'crosscl_mm.StrictCocoDataset'
train_dataloader = dict(dataset=dict(type=dataset_type))
val_dataloader = dict(dataset=dict(type=dataset_type))
test_dataloader = dict(dataset=dict(type=dataset_type))
