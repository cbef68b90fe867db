# SoCo's detectron2 protocol for Mask R-CNN R50-FPN on LVIS v1, 90k iterations at
# 16 images, in mmdet 3.3: hologerry/SoCo detectron2_configs/
# SoCo_FPN_Star_400ep_lvis.yaml over its LVIS_R_50_FPN_1x.yaml (the LVIS base in
# that folder; the leaf names "mask_rcnn_R_50_FPN_1x.yaml", which the folder does
# not have, see docs/transfer_protocol.md), Base-RCNN-FPN.yaml and the defaults of
# hologerry's detectron2 (v0.3 plus upstream up to f71d845). The comments give the
# detectron2 key; docs/transfer_protocol.md has the side-by-side table and
# tests/test_transfer_protocol.py pins every value. As a detectron2 YAML:
# configs/benchmarks/detectron2/mask_rcnn_R_50_FPN_1x_lvis_v1_syncbn_soco.yaml.
#
# The model, input scales, warmup, steps and Precise BN are those of the COCO
# R50-FPN 90k protocol (SyncBN everywhere, 4conv-1fc box head), which this file
# inherits; LVIS changes the data, the classes, the sampler, the test-time
# detections and the evaluation.
_base_ = 'mask-rcnn_r50-fpn_syncbn-all_ms-90k_coco.py'

# ROI_HEADS.NUM_CLASSES 1203; SCORE_THRESH_TEST 0.0001; TEST.DETECTIONS_PER_IMAGE 300.
model = dict(
    roi_head=dict(bbox_head=dict(num_classes=1203), mask_head=dict(num_classes=1203)),
    test_cfg=dict(rcnn=dict(score_thr=0.0001, max_per_img=300)))

data_root = 'data/lvis_v1/'
# DATASETS.TRAIN ("lvis_v1_train",), TEST ("lvis_v1_val",): images under
# train2017/ and val2017/, found through each image's coco_url (mmdet's
# LVISV1Dataset). StrictLVISV1Dataset stops on a malformed annotation file,
# naming the file, field and index.
# DATALOADER.SAMPLER_TRAIN "RepeatFactorTrainingSampler", REPEAT_THRESHOLD 0.001:
# crosscl_mm.RepeatFactorInfiniteSampler rounds each image's repeat factor anew
# on every pass, as detectron2 does (mmdet's ClassBalancedDataset repeats it
# ceil(r) times, once).
train_dataloader = dict(
    sampler=dict(_delete_=True, type='crosscl_mm.RepeatFactorInfiniteSampler',
                 repeat_thresh=0.001),
    dataset=dict(type='crosscl_mm.StrictLVISV1Dataset', data_root=data_root,
                 ann_file='annotations/lvis_v1_train.json', data_prefix=dict(img='')))
val_dataloader = dict(
    dataset=dict(type='crosscl_mm.StrictLVISV1Dataset', data_root=data_root,
                 ann_file='annotations/lvis_v1_val.json', data_prefix=dict(img='')))
test_dataloader = val_dataloader
# LVISEvaluator: the LVIS API's federated evaluation (at most 300 detections per
# image), bbox and segm AP, AP50, AP75, APs/m/l and APr/APc/APf.
val_evaluator = dict(_delete_=True, type='LVISMetric',
                     ann_file=data_root + 'annotations/lvis_v1_val.json',
                     metric=['bbox', 'segm'])
test_evaluator = val_evaluator

# SOLVER.BASE_LR 0.02, MOMENTUM 0.9, WEIGHT_DECAY 2.5e-5 (SoCo_FPN_Star_400ep_lvis.yaml),
# WEIGHT_DECAY_NORM 0; WEIGHT_DECAY_BIAS bound to 1e-4 when detectron2 v0.3's
# defaults load, given to the biases of non-norm layers.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    constructor='crosscl_mm.Detectron2OptimWrapperConstructor',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=2.5e-5),
    paramwise_cfg=dict(detectron2_version='v0.3', weight_decay_norm=0.0))
