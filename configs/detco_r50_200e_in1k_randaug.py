# Targets DetCo-200ep-AA: arXiv v1's "DetCo+AA" column (COCO Mask R-CNN R50-FPN 1x
# 40.1 / 36.4, C4 1x 39.8 / 34.7), which the ICCV text's "DetCo" rows (RandAugment on
# the global views) most likely are. docs/detco.md
_base_ = './detco_r50_200e_in1k.py'
# "Rand-Augmentation is also used on global view" (ICCV text; arXiv v1's "DetCo+AA"): no N
# or M is published, so RandAugment's ImageNet ResNet-50 setting, N=2, M=9, on I_q and I_k
# after the crop (pipeline step 1) and before the colour augmentation. docs/detco.md
train_pipeline = [*_base_.train_pipeline[:2],
                  dict(type='ViewRandAugment', num_ops=2, magnitude=9, views=(0, 1)),
                  *_base_.train_pipeline[2:]]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
