_base_ = './soco_r50c4_100e_in1k.py'
# Mixed precision (the official scripts: apex O1): bfloat16 autocast where the GPU has it
# natively, float16 with dynamic loss scaling otherwise; the optimizer is the base config's.
# RoIAlign runs on C4 cast to float32 and the embeddings' normalisation and the loss in
# float32, as SoCoC4 does under any autocast.
optim_wrapper = dict(type='MixedPrecisionOptimWrapper', dtype='auto', loss_scale='dynamic')
