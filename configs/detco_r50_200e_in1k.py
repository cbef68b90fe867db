_base_ = [
    '_base_/models/detco_r50.py',
    '_base_/datasets/imagenet_detco.py',
    '_base_/schedules/sgd_coslr-200e.py',
    '_base_/default_runtime.py',
]
# 8 GPUs x 32 images, 200 epochs on ImageNet-1k (DetCo paper section 3.4: batch 256 on
# 8 V100, MoCo v2's hyper-parameters: SGD lr 0.03, momentum 0.9, weight decay 1e-4, cosine).
