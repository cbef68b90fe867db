_base_ = './detco_r50_200e_in1k.py'
# Targets no published row: compare with detco_r50_200e_in1k.py (DetCo-200ep).
# Ablation: every stage weighs the same (the default 0.1/0.4/0.7/1.0 comes from an
# unofficial port; the paper only says shallow < deep). docs/detco.md
model = dict(level_weights=(1.0, 1.0, 1.0, 1.0))
