_base_ = './detco_r50_200e_in1k.py'
# Targets DetCo-200ep, as detco_r50_200e_in1k.py (the same recipe; its header and docs/detco.md).
# Mixed precision: bfloat16 autocast where the GPU has it natively (Ampere and later),
# float16 with dynamic loss scaling otherwise; the optimizer is the base config's. The
# embeddings are normalised in float32 and InfoNCE's softmax runs on float32 logits.
optim_wrapper = dict(type='MixedPrecisionOptimWrapper', dtype='auto', loss_scale='dynamic')
