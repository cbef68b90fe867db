# Faster R-CNN R101-C4 on VOC07+12, 24k iterations
# (_base_/faster-rcnn_r101-c4_syncbn-extra-norm_ms-24k_voc0712.py) from a
# DenseCL ResNet-101: the seed's R101 baseline row; the res5 RoI head starts
# from the pretrained layer4.
#   python tools/model_converters/convert_pretrained.py CHECKPOINT densecl_r101_mmdet.pth --to mmdet
#   python tools/benchmarks/mmdetection/voc_trials.py densecl_r101_mmdet.pth --gpus 8 --trials 5 \
#       --config configs/benchmarks/mmdetection/faster-rcnn_r101-c4_syncbn_densecl_24k_voc0712.py
_base_ = '_base_/faster-rcnn_r101-c4_syncbn-extra-norm_ms-24k_voc0712.py'

pretrained = 'densecl_r101_mmdet.pth'
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    roi_head=dict(shared_head=dict(
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.'))))
