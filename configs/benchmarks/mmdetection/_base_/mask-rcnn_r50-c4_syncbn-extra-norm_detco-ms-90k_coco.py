# DetCo's COCO Mask R-CNN R50-C4 protocol, 90k iterations (xieenze/DetCo
# benchmarks/detection/configs/coco_R_50_C4_1x_moco.yaml); side by side in
# docs/transfer_protocol.md, pinned by tests/test_transfer_protocol.py.
_base_ = ['detco/mask-rcnn_r50-c4_syncbn-extra-norm_coco.py', 'schedules/detco_ms-90k.py']
