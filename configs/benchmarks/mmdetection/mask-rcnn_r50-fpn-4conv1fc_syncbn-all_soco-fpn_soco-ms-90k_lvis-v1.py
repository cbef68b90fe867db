# Mask R-CNN R50-FPN on LVIS v1, 90k iterations, with SoCo's transfer
# (hologerry/SoCo detectron2_configs/SoCo_FPN_Star_400ep_lvis.yaml, its README's
# "Results on LVIS with MaskRCNN R50-FPN"): the protocol of
# _base_/mask-rcnn_r50-fpn-4conv1fc_syncbn-all_soco-ms-90k_lvis-v1.py with the
# backbone, the whole FPN and the box head's 4 convs and fc from the SoCo
# checkpoint (its converted current_detectron2_Head.pkl holds the same), as
# ./mask-rcnn_r50-fpn-4conv1fc_syncbn-all_soco_ms-90k_coco.py does on COCO.
#
#   python tools/model_converters/convert_pretrained.py ckpt_epoch_400.pth soco_mmdet.pth \
#       --to mmdet --with-fpn --with-box-head
#   bash tools/dist_train.sh configs/benchmarks/mmdetection/<this file> 8 --cfg-options \
#       model.backbone.init_cfg.checkpoint=soco_mmdet.pth \
#       model.neck.init_cfg.0.checkpoint=soco_mmdet.pth \
#       model.roi_head.bbox_head.init_cfg.2.checkpoint=soco_mmdet.pth
_base_ = '_base_/mask-rcnn_r50-fpn-4conv1fc_syncbn-all_soco-ms-90k_lvis-v1.py'

pretrained = 'soco_mmdet.pth'
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(init_cfg=[dict(type='Pretrained', checkpoint=pretrained, prefix='neck.')]),
    roi_head=dict(bbox_head=dict(
        # mmdet's init of the classifier and regressor; the rest is pretrained.
        init_cfg=[dict(type='Normal', std=0.01, override=dict(name='fc_cls')),
                  dict(type='Normal', std=0.001, override=dict(name='fc_reg')),
                  dict(type='Pretrained', checkpoint=pretrained, prefix='roi_head.bbox_head.')])))
