_base_ = './regioncl-d_r50_200e_in1k.py'
# RegionCL-D with ResNet-101 (dist_train.sh:28 with ARCH=resnet101): the seed's R101 rows.
model = dict(backbone=dict(depth=101))
