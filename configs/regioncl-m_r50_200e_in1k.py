_base_ = [
    '_base_/models/regioncl-m_r50.py',
    '_base_/datasets/imagenet_mocov2.py',
    '_base_/schedules/sgd_coslr-200e.py',
    '_base_/default_runtime.py',
]
# RegionCL-M as the official run (regionCLM-r50.py, RegionCLM.log): 8 GPUs x 128 images,
# drop_last; SGD lr 0.15, momentum 0.9, weight decay 1e-4; cosine to 0 stepped per epoch,
# no warmup; 200 epochs; float32.
train_dataloader = dict(batch_size=128)
optim_wrapper = dict(optimizer=dict(lr=0.15))
auto_scale_lr = dict(base_batch_size=1024)
