_base_ = [
    '_base_/models/crosscl_r50fpn.py',
    '_base_/datasets/imagenet_crosscl.py',
    '_base_/schedules/sgd_coslr-200e.py',
    '_base_/default_runtime.py',
]
# 8 GPUs x 32 images, 200 epochs on ImageNet-1k (reference: sh/crosscl_200e_imagenet.sh).
