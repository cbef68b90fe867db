# Faster R-CNN R50-C4 on VOC07+12, 24k iterations: the reference protocol
# (_base_/faster-rcnn_r50-c4_syncbn-extra-norm_ms-24k_voc0712.py) from a CrossCL
# backbone; the res5 RoI head starts from the pretrained layer4.
#   python tools/model_converters/convert_pretrained.py epoch_200.pth crosscl_mmdet.pth --to mmdet
#   python tools/benchmarks/mmdetection/voc_trials.py crosscl_mmdet.pth --gpus 8 --trials 5
_base_ = '_base_/faster-rcnn_r50-c4_syncbn-extra-norm_ms-24k_voc0712.py'

pretrained = 'crosscl_mmdet.pth'
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    roi_head=dict(shared_head=dict(
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.'))))
