_base_ = './regioncl-m_r50_200e_in1k.py'
# Mixed precision: bfloat16 autocast where the GPU has it natively (Ampere and later),
# float16 with dynamic loss scaling otherwise; the optimizer is the base config's.
optim_wrapper = dict(type='MixedPrecisionOptimWrapper', dtype='auto', loss_scale='dynamic')
