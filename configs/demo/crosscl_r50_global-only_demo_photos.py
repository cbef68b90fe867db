# `make demo`'s ablation: the global term alone (MoCo v2 with a shared flip),
# with the same data, views, batch, queue and schedule as crosscl_r50fpn_demo_photos.py.
_base_ = './crosscl_r50fpn_demo_photos.py'
model = dict(fpn=None, loss_weights=dict(loss_p4=0, loss_p3=0, loss_p4_p3=0, loss_p3_p4=0))
