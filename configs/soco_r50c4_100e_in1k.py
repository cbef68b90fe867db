_base_ = [
    '_base_/models/soco_r50c4.py',
    '_base_/datasets/imagenet_soco-c4.py',
    '_base_/schedules/lars_coslr-100e.py',
    '_base_/default_runtime.py',
]
# SoCo-C4: 8 GPUs x 128 images, 100 epochs on ImageNet-1k (official tools/SoCo_C4_100ep.sh:
# LARS, base lr 1.0 per 256 images, weight decay 1e-5, 10 warmup epochs, --crop 0.6).
# BatchNorm synchronised over all GPUs, as official (SoCo_C4.py:60-64).
sync_bn = 'torch'
