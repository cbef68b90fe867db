# Faster R-CNN R101-C4 on VOC07+12, 24k iterations
# (_base_/faster-rcnn_r101-c4_syncbn-extra-norm_ms-24k_voc0712.py) from a
# RegionCL-D ResNet-101: the seed's R101 row (github CoinCheung/DenseCL,
# release v0.0.1 regioncl_r101_checkpoint_0199.pth.tar, or crosscl_mm's
# regioncl-d_r101 run); the res5 RoI head starts from the pretrained layer4.
#   python tools/model_converters/convert_pretrained.py CHECKPOINT regioncl-d_r101_mmdet.pth --to mmdet
#   python tools/benchmarks/mmdetection/voc_trials.py regioncl-d_r101_mmdet.pth --gpus 8 --trials 5 \
#       --config configs/benchmarks/mmdetection/faster-rcnn_r101-c4_syncbn_regioncl-d_24k_voc0712.py
_base_ = '_base_/faster-rcnn_r101-c4_syncbn-extra-norm_ms-24k_voc0712.py'

pretrained = 'regioncl-d_r101_mmdet.pth'
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    roi_head=dict(shared_head=dict(
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.'))))
