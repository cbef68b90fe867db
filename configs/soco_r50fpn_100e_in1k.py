_base_ = [
    '_base_/models/soco_r50fpn.py',
    '_base_/datasets/imagenet_soco_cutout.py',
    '_base_/schedules/lars_coslr-100e.py',
    '_base_/default_runtime.py',
]
# 8 GPUs x 128 images, 100 epochs on ImageNet-1k, with cutout in the boxes of views 2
# and 3 (official tools/SoCo_FPN_100ep.sh).
sync_bn = 'torch'
