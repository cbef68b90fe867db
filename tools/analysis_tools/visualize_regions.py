"""Draw what CrossCL's regional contrast sees, through the real train pipeline.

    python tools/analysis_tools/visualize_regions.py IMAGE_OR_FOLDER \
        --config configs/crosscl_r50fpn_200e_in1k.py --out DIR [--samples 2] [--level p4]

For each image and sample, one PNG: the original image with both crop boxes
(query red, key blue), then the query view with its sliding windows and the
key view with the mapped windows, linked by lines. Valid pairs are green,
windows whose mapped box leaves the key view are grey (those are ignored by
the loss). The views come from the config's own train pipeline (everything
before packing), so a bug in cropping, flipping or mapping shows here.
"""
import argparse
import os
import os.path as osp

import numpy as np
from PIL import Image, ImageDraw

VALID, INVALID, QUERY_CROP, KEY_CROP = (0, 200, 0), (150, 150, 150), (230, 30, 30), (30, 90, 230)
GAP = 12


def pipeline_without_packing(cfg, cfg_options=None):
    """The config's train pipeline up to, not including, packing: it returns
    the views, crop boxes and regions as arrays. ``cfg`` is a config file or
    a loaded :class:`mmengine.config.Config`."""
    from mmengine.config import Config
    from mmengine.dataset import Compose
    import crosscl_mm  # noqa: F401
    from crosscl_mm.registry import TRANSFORMS
    cfg = Config.fromfile(cfg) if isinstance(cfg, str) else cfg.copy()
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    steps = [t for t in cfg.train_dataloader.dataset.pipeline
             if not str(t['type']).endswith('PackRegionPairInputs')]
    return Compose([TRANSFORMS.build(t) for t in steps])


def render(results, level='p4'):
    """One RGB canvas: original with crops | query view | key view."""
    original = Image.fromarray(results['ori_img'])
    width = original.width
    crops = np.array(results['crop_boxes'], dtype=float)
    if results['flip']:  # crop boxes are in the flipped image; draw them on the original
        crops[:, [0, 2]] = width - crops[:, [2, 0]]
    size = results['view_size']
    scale = size / max(original.height, 1)
    shown = original.resize((max(1, round(width * scale)), size), Image.BILINEAR)
    canvas = Image.new('RGB', (shown.width + 2 * size + 2 * GAP, size), 'white')
    canvas.paste(shown, (0, 0))
    q_left = shown.width + GAP
    k_left = q_left + size + GAP
    canvas.paste(Image.fromarray(results['img'][0]), (q_left, 0))
    canvas.paste(Image.fromarray(results['img'][1]), (k_left, 0))
    draw = ImageDraw.Draw(canvas)
    for crop, colour in zip(crops, (QUERY_CROP, KEY_CROP)):
        draw.rectangle([c * scale for c in crop], outline=colour, width=2)
    draw.rectangle([q_left, 0, q_left + size - 1, size - 1], outline=QUERY_CROP, width=2)
    draw.rectangle([k_left, 0, k_left + size - 1, size - 1], outline=KEY_CROP, width=2)
    regions = results[f'regions_{level}']
    order = np.argsort(regions['valid'])  # invalid first, valid drawn on top
    for i in order:
        q, k, ok = regions['query_boxes'][i], regions['key_boxes'][i], regions['valid'][i]
        colour = VALID if ok else INVALID
        qb = [q[0] + q_left, q[1], q[2] + q_left, q[3]]
        draw.rectangle(qb, outline=colour, width=1)
        if ok:
            kb = [k[0] + k_left, k[1], k[2] + k_left, k[3]]
            draw.rectangle(kb, outline=colour, width=1)
            draw.line([(qb[0] + qb[2]) / 2, (qb[1] + qb[3]) / 2,
                       (kb[0] + kb[2]) / 2, (kb[1] + kb[3]) / 2], fill=(255, 200, 0), width=1)
    return canvas, dict(query_left=q_left, key_left=k_left, scale=scale)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('source', help='an image file or a folder of images')
    parser.add_argument('--config', default='configs/crosscl_r50fpn_200e_in1k.py')
    parser.add_argument('--out', required=True)
    parser.add_argument('--samples', type=int, default=2, help='random draws per image')
    parser.add_argument('--level', default='p4')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()

    import torch
    from crosscl_mm.datasets import IMAGE_EXTENSIONS
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    import random
    random.seed(args.seed)
    if osp.isdir(args.source):
        images = sorted(osp.join(r, f) for r, _, fs in os.walk(args.source) for f in fs
                        if f.lower().endswith(IMAGE_EXTENSIONS))
    else:
        images = [args.source]
    pipeline = pipeline_without_packing(args.config)
    os.makedirs(args.out, exist_ok=True)
    for path in images:
        for s in range(args.samples):
            results = pipeline(dict(img_path=path))
            if results is None:
                print(f'skipped unreadable {path}')
                break
            from crosscl_mm.datasets.transforms.loading import decode_rgb
            results['ori_img'] = decode_rgb(path)
            canvas, _ = render(results, args.level)
            out = osp.join(args.out, f'{osp.splitext(osp.basename(path))[0]}_{s}.png')
            canvas.save(out)
            valid = int(np.sum(results[f'regions_{args.level}']['valid']))
            print(f'{out}: flip={results["flip"]}, {valid}/{len(results[f"regions_{args.level}"]["valid"])} '
                  f'windows valid')


if __name__ == '__main__':
    main()
