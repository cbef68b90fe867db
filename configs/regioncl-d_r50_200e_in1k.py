_base_ = [
    '_base_/models/regioncl-d_r50.py',
    '_base_/datasets/imagenet_mocov2.py',
    '_base_/schedules/sgd_warmup-coslr-200e.py',
    '_base_/default_runtime.py',
]
# RegionCL-D as CoinCheung/DenseCL ran it (dist_train.sh:28: --lr 0.03 --batch-size 256 on
# 8 GPUs, --epochs 200, --moco-t 0.2 --aug-plus --cos --cutmix --use-mixed-precision):
# 8 x 32 images; 5 warmup epochs then cosine; float16 autocast with a dynamic GradScaler
# (main_densecl.py:304-327). On a CPU, or for bfloat16:
# --cfg-options optim_wrapper.dtype=auto (or bfloat16).
train_dataloader = dict(batch_size=32)
optim_wrapper = dict(type='MixedPrecisionOptimWrapper', dtype='float16', loss_scale='dynamic')
