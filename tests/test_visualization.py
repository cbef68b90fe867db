"""The region visualisation draws exactly the pipeline's boxes."""
import os.path as osp
import sys

import numpy as np
from PIL import Image

from conftest import REPO, python_cmd, run, skimage_photo

sys.path.insert(0, osp.join(REPO, 'tools', 'analysis_tools'))
import visualize_regions  # noqa: E402


def test_drawn_windows_match_the_data_sample():
    import torch
    from crosscl_mm.datasets.transforms.loading import decode_rgb
    torch.manual_seed(3)
    pipeline = visualize_regions.pipeline_without_packing(
        osp.join(REPO, 'configs/crosscl_r50fpn_200e_in1k.py'))
    path = skimage_photo('chelsea.png')
    results = pipeline(dict(img_path=path))
    results['ori_img'] = decode_rgb(path)
    canvas, layout = visualize_regions.render(results, 'p4')
    pixels = np.asarray(canvas)
    regions = results['regions_p4']
    assert regions['valid'].any()
    hits = total = 0
    for q, k, ok in zip(regions['query_boxes'], regions['key_boxes'], regions['valid']):
        colour = visualize_regions.VALID if ok else visualize_regions.INVALID
        corners = [(layout['query_left'] + q[0], q[1])]
        if ok:
            corners.append((layout['key_left'] + k[0], k[1]))
        for x, y in corners:
            total += 1
            hits += tuple(pixels[int(round(y)), int(round(x))]) == colour
    assert hits >= 0.9 * total, (hits, total)
    # The query crop's corner is drawn in red on the original image.
    crop = np.array(results['crop_boxes'][0])
    if results['flip']:
        crop[[0, 2]] = results['ori_img'].shape[1] - crop[[2, 0]]
    x0, y0 = crop[:2] * layout['scale']
    assert tuple(pixels[int(y0) + 1, int(x0) + 1]) == visualize_regions.QUERY_CROP or \
        tuple(pixels[int(y0), int(x0)]) == visualize_regions.QUERY_CROP


def test_cli_writes_pngs(tmp_path):
    out = tmp_path / 'viz'
    proc = run(python_cmd('tools/analysis_tools/visualize_regions.py', skimage_photo('astronaut.png'),
                          '--config', 'configs/crosscl_r50fpn_200e_in1k.py', '--out', str(out),
                          '--samples', '2'))
    files = sorted(out.glob('*.png'))
    assert [f.name for f in files] == ['astronaut_0.png', 'astronaut_1.png']
    img = Image.open(files[0])
    assert img.height == 224 and img.width > 2 * 224
    assert 'windows valid' in proc.stdout
