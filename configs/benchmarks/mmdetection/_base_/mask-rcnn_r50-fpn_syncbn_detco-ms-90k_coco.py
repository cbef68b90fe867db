# DetCo's COCO Mask R-CNN R50-FPN protocol, 90k iterations (xieenze/DetCo
# benchmarks/detection/configs/coco_R_50_FPN_1x_moco.yaml); side by side in
# docs/transfer_protocol.md, pinned by tests/test_transfer_protocol.py.
_base_ = ['detco/mask-rcnn_r50-fpn_syncbn_coco.py', 'schedules/detco_ms-90k.py']
