_base_ = './soco_r50fpn_400e_in1k.py'
# Mixed precision: bfloat16 autocast where the GPU has it natively (Ampere and later),
# float16 with dynamic loss scaling otherwise; the optimizer (LARS) is the base config's.
# As the official runs (apex O1, tools/SoCo_*.sh --amp_opt_level O1), RoIAlign takes its
# maps in float32 and the embeddings are normalised in float32; the loss is float32 too.
optim_wrapper = dict(type='MixedPrecisionOptimWrapper', dtype='auto', loss_scale='dynamic')
