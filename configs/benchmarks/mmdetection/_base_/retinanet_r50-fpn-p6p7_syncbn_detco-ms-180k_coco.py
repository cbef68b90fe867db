# DetCo's COCO RetinaNet R50-FPN protocol, 180k iterations (xieenze/DetCo
# benchmarks/detection/configs/coco_R_50_RetinaNet_2x_moco.yaml); side by side in
# docs/transfer_protocol.md, pinned by tests/test_transfer_protocol.py.
_base_ = ['detco/retinanet_r50-fpn-p6p7_syncbn_coco.py', 'schedules/detco_ms-180k.py']
