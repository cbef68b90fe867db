_base_ = './mask-rcnn_r50-fpn_syncbn-all_crosscl-fpn_1x_coco.py'
# Backbone-only variant: the FPN keeps mmdet's init (as the official mmdet converter does).
model = dict(neck=dict(init_cfg=dict(_delete_=True, type='Xavier', layer='Conv2d',
                                     distribution='uniform')))
