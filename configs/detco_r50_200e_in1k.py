# Targets DetCo-200ep, the plain "DetCo" column of the DetCo paper's arXiv v1 tables (no
# RandAugment; e.g. COCO Mask R-CNN R50-FPN 1x 39.5 box AP / 35.9 mask AP, VOC07+12
# Faster R-CNN C4 57.8 AP). The ICCV text adds RandAugment on the global views and its 1x
# gains equal v1's "DetCo+AA" rows: detco_r50_200e_in1k_randaug.py. docs/detco.md
_base_ = [
    '_base_/models/detco_r50.py',
    '_base_/datasets/imagenet_detco.py',
    '_base_/schedules/sgd_coslr-200e.py',
    '_base_/default_runtime.py',
]
# 8 GPUs x 32 images, 200 epochs on ImageNet-1k (DetCo paper section 3.4: batch 256 on
# 8 V100, MoCo v2's hyper-parameters: SGD lr 0.03, momentum 0.9, weight decay 1e-4, cosine).

# Every checkpoint carries the backbone's BatchNorm statistics re-estimated on the global
# views (in training they mix 224 px views and 64 px patches); custom_hooks = [] keeps
# the training ones. docs/detco.md
custom_hooks = [dict(type='GlobalViewBNHook', num_iters=200, views=(0, 1))]
