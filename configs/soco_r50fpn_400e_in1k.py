_base_ = [
    '_base_/models/soco_r50fpn.py',
    '_base_/datasets/imagenet_soco.py',
    '_base_/schedules/lars_coslr-400e.py',
    '_base_/default_runtime.py',
]
# 8 GPUs x 128 images, 400 epochs on ImageNet-1k (official tools/SoCo_FPN_400ep.sh).
# BatchNorm synchronised over all GPUs, as official (SoCo_FPN.py:83-91).
sync_bn = 'torch'
