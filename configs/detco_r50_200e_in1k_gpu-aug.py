_base_ = './detco_r50_200e_in1k.py'
# Targets DetCo-200ep, as detco_r50_200e_in1k.py (the same recipe; its header and docs/detco.md).
# The same recipe with the photometric ops on the device: the workers decode, crop, flip and
# cut the jigsaw patches (uint8); the data preprocessor colours each view, one draw per
# view as before (the nine patches of a local view share it). Differences from colouring the
# 255 px view before the cut: the contrast mean is over the patches and the blur sees each
# patch's edges (docs/benchmark.md).
color_augments = [step for step in _base_.train_pipeline if step['type'] == 'ViewColorAugment']
train_pipeline = [step for step in _base_.train_pipeline if step['type'] != 'ViewColorAugment']
model = dict(data_preprocessor=dict(color_augments=color_augments))
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
