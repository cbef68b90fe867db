# Faster R-CNN R101-C4 on VOC07+12, 24k iterations: the R50-C4 protocol
# (faster-rcnn_r50-c4_syncbn-extra-norm_ms-24k_voc0712.py) with a ResNet-101,
# as the seed's R101 rows ran it: github CoinCheung/DenseCL
# detection/configs/pascal_voc_R_101_C4_24k_moco.yaml is its R50 YAML with
# MODEL.RESNETS.DEPTH 101 (and the RGB ImageNet statistics the R50 one has
# here already). The res5 RoI head is layer4 of the same network: 3 blocks at
# either depth; R101's 23-block layer3 is the difference.
#
# A leaf per pretraining method points the `Pretrained` init_cfgs at its
# converted R101 checkpoint; alone, this file starts from torchvision's
# ImageNet-supervised ResNet-101.
_base_ = 'faster-rcnn_r50-c4_syncbn-extra-norm_ms-24k_voc0712.py'

model = dict(
    backbone=dict(depth=101,  # RESNETS.DEPTH: 101
                  init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')),
    roi_head=dict(shared_head=dict(
        depth=101, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101'))))
