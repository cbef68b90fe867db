# SoCo's schedule (official main_pretrain.py:62-84, contrast/lars.py, lr_scheduler.py):
# LARS (SGD momentum 0.9; conv/linear weights get weight decay 1e-5 and the trust ratio
# 0.001, biases and norms neither), lr = 1.0 x total batch / 256 = 4.0 for 8 GPUs x 128;
# 10 epochs of linear warmup from lr/100, then cosine to 1e-6, stepped every iteration.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='LARS', lr=4.0, momentum=0.9, weight_decay=1e-5,
                   trust_coefficient=0.001, eps=1e-8))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, end_factor=1.0, by_epoch=True, begin=0, end=10,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=390, eta_min=1e-6, by_epoch=True, begin=10, end=400,
         convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=400)
# The learning rate is for a total batch of 1024; set --auto-scale-lr to scale it.
auto_scale_lr = dict(base_batch_size=1024, enable=False)
