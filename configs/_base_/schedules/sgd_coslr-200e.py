# The reference's schedule: SGD lr 0.03 for 8 GPUs x 32 images, cosine decay.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.03, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=200, by_epoch=True, begin=0, end=200,
         convert_to_iter_based=False)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=200)
# The learning rate is for a total batch of 256; set --auto-scale-lr to scale it.
auto_scale_lr = dict(base_batch_size=256, enable=False)
