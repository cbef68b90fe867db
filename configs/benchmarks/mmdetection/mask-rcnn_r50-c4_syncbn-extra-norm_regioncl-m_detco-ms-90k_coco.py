# DetCo's COCO Mask R-CNN R50-C4 protocol, 90k iterations (MoCo's detectron2 kit), from
# RegionCL-M's backbone (Annbless/RegionCL, 200 epochs), as RegionCL ran it:
# logs/RegionCLM/MaskRCNN-C4-RegionCLM-1x.log @ 61bbcab runs the same YAML values on detectron2 0.5
# (its environment table), whose build_optimizer decays every bias, norm
# biases included, by WEIGHT_DECAY_BIAS (1e-4); norm weights keep 0.
# The res5 RoI head starts from the pretrained layer4.
#   python tools/model_converters/convert_pretrained.py regionclm_epoch_200.pth regioncl-m_mmdet.pth --to mmdet
#   python tools/benchmarks/transfer.py regionclm_epoch_200.pth --protocol detco_mask-rcnn_r50-c4_90k_coco
_base_ = '_base_/mask-rcnn_r50-c4_syncbn-extra-norm_detco-ms-90k_coco.py'

pretrained = 'regioncl-m_mmdet.pth'
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    roi_head=dict(shared_head=dict(
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.'))))
optim_wrapper = dict(paramwise_cfg=dict(detectron2_version='v0.5'))
