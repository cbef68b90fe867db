# DetCo's COCO RetinaNet R50-FPN protocol, 180k iterations (MoCo's detectron2 kit), from
# RegionCL-M's backbone (Annbless/RegionCL, 200 epochs), as RegionCL ran it:
# logs/RegionCLM/RetinaNet-RegionCLM-2x.log @ 61bbcab runs the same YAML values on detectron2 0.5
# (its environment table), whose build_optimizer decays every bias, norm
# biases included, by WEIGHT_DECAY_BIAS (1e-4); norm weights keep 0.
#   python tools/model_converters/convert_pretrained.py regionclm_epoch_200.pth regioncl-m_mmdet.pth --to mmdet
#   python tools/benchmarks/transfer.py regionclm_epoch_200.pth --protocol detco_retinanet_r50-fpn_180k_coco
_base_ = '_base_/retinanet_r50-fpn-p6p7_syncbn_detco-ms-180k_coco.py'

pretrained = 'regioncl-m_mmdet.pth'
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')))
optim_wrapper = dict(paramwise_cfg=dict(detectron2_version='v0.5'))
