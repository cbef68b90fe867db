_base_ = './detco_r50_200e_in1k.py'
# Targets no published row: compare with detco_r50_200e_in1k.py (DetCo-200ep).
# Ablation: DetCo.pytorch's local heads, Linear(9C, 9C)-ReLU-Linear(9C, 128) per stage
# (about 340M parameters at Res5) instead of a hidden width of C. docs/detco.md
model = dict(local_hid_channels=(9 * 256, 9 * 512, 9 * 1024, 9 * 2048))
