_base_ = './soco_r50fpn_400e_in1k.py'
# The same recipe with BYOL's photometric ops on the device: the workers decode, crop and
# flip (uint8 views, proposals as before); the data preprocessor runs both ViewColorAugment
# configs (view 1; views 2 and 3), batched (docs/benchmark.md). The 100-epoch recipe cuts
# out after the colours, on the CPU, so it has no such variant.
color_augments = [step for step in _base_.train_pipeline if step['type'] == 'ViewColorAugment']
train_pipeline = [step for step in _base_.train_pipeline if step['type'] != 'ViewColorAugment']
model = dict(data_preprocessor=dict(color_augments=color_augments))
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
