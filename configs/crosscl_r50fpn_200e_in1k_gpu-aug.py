_base_ = './crosscl_r50fpn_200e_in1k.py'
# The same recipe with the photometric ops (blur, colour jitter, grayscale) on the device:
# the dataloader workers decode, crop and flip (uint8 views, windows mapped as before) and
# the data preprocessor runs the ViewColorAugment config, batched (docs/benchmark.md).
color_augments = [step for step in _base_.train_pipeline if step['type'] == 'ViewColorAugment']
train_pipeline = [step for step in _base_.train_pipeline if step['type'] != 'ViewColorAugment']
model = dict(data_preprocessor=dict(color_augments=color_augments))
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
