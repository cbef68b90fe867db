"""Convert a pretraining checkpoint for detection.

    python tools/model_converters/convert_pretrained.py INPUT OUTPUT \
        --to {mmdet,detectron2,torchvision} [--with-fpn] [--with-box-head]

INPUT is a crosscl_mm checkpoint of any of its algorithms or a released one
(official CrossCL and SoCo; DetCo and DenseCL releases in torchvision names;
MoCo v1/v2; RegionCL-M's OpenSelfSup layout; CoinCheung/DenseCL's DenseCL and
RegionCL-D; a detectron2 ``.pkl``), ResNet-50 or ResNet-101: the layout and
the depth are detected from the tensor names and printed. Only the online
encoder is exported. The input is loaded with ``weights_only=True``, or, for
a detectron2 ``.pkl`` (a plain pickle of numpy arrays), with an unpickler
that admits numpy arrays and plain data only: nothing in it can run code.
Junk, and a layout no reader knows (the message lists what the file holds
and the accepted layouts), are refused with exit code 2 and no output file;
the output is written atomically.

- ``--to mmdet``: ``backbone.*`` for mmdet's ResNet, and with ``--with-fpn``
  ``neck.*`` for mmdet's FPN of a standard R50-FPN. Load it with
  ``init_cfg=dict(type='Pretrained', checkpoint=OUTPUT, prefix='backbone.')``
  (and ``prefix='neck.'``) or ``load_from``. With ``--with-box-head``
  (SoCo) also ``roi_head.bbox_head.shared_convs/shared_fcs`` for mmdet's
  ``Shared4Conv1FCBBoxHead`` (``prefix='roi_head.bbox_head.'``).
- ``--to detectron2``: a .pkl in detectron2's ResNet(-FPN) names with
  ``matching_heuristics`` (``roi_heads.box_head.conv1-4/fc1`` with
  ``--with-box-head``).
- ``--to torchvision``: a ``resnet50`` / ``resnet101`` state dict (all but ``fc``).
- ``--c4`` (the default for SoCo-C4 checkpoints, whose ``layer4`` was
  pretrained as the RoI box head on C4; ``--no-c4`` to turn it off): the
  layout of a C4 detector, stages 1-3 as the backbone and ``layer4`` as its
  res5 RoI head: ``roi_head.shared_head.layer4.*`` for mmdet's Mask/Faster
  R-CNN R50-C4 (``load_from=OUTPUT``), ``roi_heads.res5.*`` for detectron2's
  Res5ROIHeads.
"""
import argparse
import sys

from crosscl_mm.converters import (CheckpointError, convert, load_checkpoint_safely,
                                   save_atomically, serialise)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('input', help='pretraining checkpoint (crosscl_mm or an official release)')
    parser.add_argument('output', help='converted file')
    parser.add_argument('--to', required=True, choices=['mmdet', 'detectron2', 'torchvision'])
    parser.add_argument('--with-fpn', action='store_true',
                        help='also export the pretrained FPN (mmdet and detectron2)')
    parser.add_argument('--with-box-head', action='store_true',
                        help='also export the pretrained 4conv-1fc box head (SoCo; mmdet and '
                             'detectron2)')
    parser.add_argument('--c4', action=argparse.BooleanOptionalAction, default=None,
                        help='layer4 as the res5 RoI head of a C4 detector (mmdet and '
                             'detectron2; default: for SoCo-C4 checkpoints)')
    args = parser.parse_args(argv)
    try:
        ckpt = load_checkpoint_safely(args.input)
        result = convert(ckpt, args.to, args.with_fpn, path=args.input,
                         with_box_head=args.with_box_head, c4=args.c4)
    except CheckpointError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    save_atomically(args.output, lambda f: serialise(result, args.to, args.input, f))
    extras = ''.join([', with FPN' if args.with_fpn else '',
                      ', with box head' if args.with_box_head else '',
                      ', C4 layout' if any('shared_head' in d or d.startswith('roi_heads.res5')
                                           for _, d in result.renamed) else ''])
    print(f'{args.input} -> {args.output} ({args.to}{extras})')
    print(result.summary())
    return 0


if __name__ == '__main__':
    sys.exit(main())
