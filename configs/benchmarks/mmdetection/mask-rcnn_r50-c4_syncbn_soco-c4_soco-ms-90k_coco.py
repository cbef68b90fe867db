# Mask R-CNN R50-C4 on COCO, 90k iterations (detectron2's 1x), with SoCo-C4's
# transfer (hologerry/SoCo detectron2_configs/SoCo_C4_400ep.yaml and
# SoCo_C4_100ep.yaml over R_50_C4_1x.yaml): the protocol of
# _base_/mask-rcnn_r50-c4_syncbn-extra-norm_soco-ms-90k_coco.py with res2-res4 from
# the SoCo-C4 checkpoint's backbone and the res5 RoI head from the res5 SoCo-C4
# pretrains as its head (its converted detectron2 .pkl, current_detectron2_C4.pkl,
# holds both); the extra norm after res5 starts from its init, as in detectron2.
#
#   python tools/model_converters/convert_pretrained.py ckpt_epoch_400.pth soco_c4_mmdet.pth \
#       --to mmdet --c4
#   bash tools/dist_train.sh configs/benchmarks/mmdetection/<this file> 8 --cfg-options \
#       model.backbone.init_cfg.checkpoint=soco_c4_mmdet.pth \
#       model.roi_head.shared_head.init_cfg.checkpoint=soco_c4_mmdet.pth
_base_ = '_base_/mask-rcnn_r50-c4_syncbn-extra-norm_soco-ms-90k_coco.py'

pretrained = 'soco_c4_mmdet.pth'
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    roi_head=dict(shared_head=dict(
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='roi_head.shared_head.'))))
