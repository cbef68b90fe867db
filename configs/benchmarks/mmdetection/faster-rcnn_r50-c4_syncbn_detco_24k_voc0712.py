# Faster R-CNN R50-C4 on VOC07+12, 24k iterations, from a DetCo backbone: the
# protocol of DetCo's own VOC config (xieenze/DetCo
# benchmarks/detection/configs/pascal_voc_R_50_C4_24k_moco.yaml, MoCo's), which
# is this one; the res5 RoI head starts from the pretrained layer4.
#   python tools/model_converters/convert_pretrained.py epoch_200.pth detco_mmdet.pth --to mmdet
#   python tools/benchmarks/mmdetection/voc_trials.py detco_mmdet.pth --gpus 8 --trials 5 \
#       --config configs/benchmarks/mmdetection/faster-rcnn_r50-c4_syncbn_detco_24k_voc0712.py
_base_ = '_base_/faster-rcnn_r50-c4_syncbn-extra-norm_ms-24k_voc0712.py'

pretrained = 'detco_mmdet.pth'
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    roi_head=dict(shared_head=dict(
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.'))))
