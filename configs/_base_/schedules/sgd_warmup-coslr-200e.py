# CoinCheung/DenseCL's schedule (main_densecl.py:400-416, --cos): per epoch, lr * (e + 1) / 5
# for epochs 0-4, then lr * (1 + cos(pi * (e - 4) / 196)) / 2 for epochs 5-199; SGD
# momentum 0.9, weight decay 1e-4, lr 0.03 for 8 GPUs x 32 images.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.03, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    # factors 0.2, 0.4, 0.6, 0.8, 1.0 at epochs 0-4 (mmengine's LinearLR reaches end_factor
    # at end - 1) ...
    dict(type='LinearLR', start_factor=0.2, end_factor=1.0, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=False),
    # ... and the cosine from epoch 4 (where it keeps the warmup's 1.0), so that epoch e >= 5
    # gets (1 + cos(pi * (e - 4) / 196)) / 2. tests/test_recipe.py checks all 200 values.
    dict(type='CosineAnnealingLR', T_max=196, by_epoch=True, begin=4, end=200,
         convert_to_iter_based=False),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=200)
auto_scale_lr = dict(base_batch_size=256, enable=False)
