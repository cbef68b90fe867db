"""Real photos for demos and tests, taken from the scikit-image wheel (no
download, nothing committed)."""
import os
import os.path as osp
from typing import List, Optional, Sequence

# The colour photographs scikit-image ships (greyscale and synthetic images left out).
SKIMAGE_PHOTOS = ('astronaut.png', 'chelsea.png', 'coffee.png', 'rocket.jpg',
                  'motorcycle_left.png', 'motorcycle_right.png', 'hubble_deep_field.jpg',
                  'ihc.png', 'retina.jpg', 'logo.png', 'color.png',
                  'coins.png', 'camera.png', 'moon.png', 'page.png', 'text.png', 'horse.png',
                  'brick.png', 'grass.png', 'gravel.png', 'cell.png', 'clock_motion.png',
                  'microaneurysms.png')


def skimage_photo_paths(names: Optional[Sequence[str]] = None) -> List[str]:
    """Paths of scikit-image's sample photos that exist in the installed wheel."""
    import skimage
    root = osp.join(osp.dirname(skimage.__file__), 'data')
    paths = [osp.join(root, n) for n in (names or SKIMAGE_PHOTOS)]
    found = [p for p in paths if osp.exists(p)]
    if not found:
        raise FileNotFoundError(f'no scikit-image sample photos under {root}')
    return found


def export_photo_folder(dst: str, names: Optional[Sequence[str]] = None, max_side: int = 256,
                        classes: int = 2) -> List[str]:
    """Write the photos as RGB JPEGs into ``dst/class_i/``, an ImageNet-like
    layout, shrunk to at most ``max_side`` pixels. Returns the written paths."""
    from PIL import Image
    written = []
    for i, path in enumerate(skimage_photo_paths(names)):
        folder = osp.join(dst, f'class_{i % classes}')
        os.makedirs(folder, exist_ok=True)
        with Image.open(path) as img:
            img = img.convert('RGB')
            img.thumbnail((max_side, max_side))
            out = osp.join(folder, osp.splitext(osp.basename(path))[0] + '.jpg')
            img.save(out, quality=90)
        written.append(out)
    return written
