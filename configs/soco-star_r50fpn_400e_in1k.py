_base_ = [
    '_base_/models/soco_r50fpn.py',
    '_base_/datasets/imagenet_soco-star.py',
    '_base_/schedules/lars_coslr-400e.py',
    '_base_/default_runtime.py',
]
# SoCo*: views 1-3 at 224, 224, 192 and view 4 (view 2 at 112); loss over the pairs
# (1, 2), (1, 3), (1, 4). 8 GPUs x 128 images, 400 epochs (tools/SoCo_FPN_Star_400ep.sh).
sync_bn = 'torch'
