_base_ = './detco_r50_200e_in1k.py'
# Targets no published row: compare with detco_r50_200e_in1k.py (DetCo-200ep).
# Ablation: the colour augmentation in CrossCL's order, Gaussian blur first, then jitter,
# then grayscale (the values are the same MoCo v2 ones). The default follows OpenSelfSup's
# MoCo v2 (jitter, grayscale, blur), which DetCo was built on. docs/detco.md
train_pipeline = [dict(step, ops=('blur', 'jitter', 'gray'))
                  if step['type'] == 'ViewColorAugment' else step
                  for step in _base_.train_pipeline]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
