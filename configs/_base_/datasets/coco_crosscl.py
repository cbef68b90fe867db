_base_ = './imagenet_crosscl.py'
# COCO train2017 is a flat folder of images; labels are not used.
data_root = 'data/coco/train2017/'
train_dataloader = dict(dataset=dict(data_root=data_root))
