_base_ = './regioncl-d_r101_200e_in1k.py'
# DenseCL with ResNet-101 as CoinCheung/DenseCL ran it for the seed's DenseCL R101 row
# (dist_train.sh:17: the same command without --cutmix): RegionCL-D with no region term.
model = dict(loss_weights=dict(loss_region=0.0))
