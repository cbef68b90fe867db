_base_ = './crosscl_r50fpn_200e_in1k.py'
# Ablation: the global term alone, i.e. MoCo v2 with the views' shared flip.
model = dict(fpn=None, loss_weights=dict(loss_p4=0, loss_p3=0, loss_p4_p3=0, loss_p3_p4=0))
