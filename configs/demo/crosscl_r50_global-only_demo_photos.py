# `make demo`'s ablation: the global term alone (MoCo v2 with a shared flip),
# with the same data, schedule and budget as crosscl_r50fpn_demo_photos.py.
_base_ = './crosscl_r50fpn_demo_photos.py'
model = dict(fpn=None, loss_weights={'global': 1.0, 'p4': 0, 'p3': 0, 'p4_p3': 0, 'p3_p4': 0})
