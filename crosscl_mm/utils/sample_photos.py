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
                        classes: int = 2, grid: int = 1) -> List[str]:
    """Write the photos as RGB JPEGs into ``dst/class_i/``, an ImageNet-like
    layout, shrunk to at most ``max_side`` pixels. With ``grid > 1`` each photo
    is shrunk to at most ``grid * max_side`` pixels and cut into ``grid x
    grid`` equal tiles, written as images of their own (``NAME_rIcJ.jpg``,
    row ``I``, column ``J``). Returns the written paths."""
    from PIL import Image
    written = []
    for i, path in enumerate(skimage_photo_paths(names)):
        folder = osp.join(dst, f'class_{i % classes}')
        os.makedirs(folder, exist_ok=True)
        stem = osp.splitext(osp.basename(path))[0]
        with Image.open(path) as img:
            img = img.convert('RGB')
            img.thumbnail((max_side * grid, max_side * grid))
            if grid == 1:
                tiles = {stem: img}
            else:
                w, h = img.width // grid, img.height // grid
                tiles = {f'{stem}_r{r}c{c}': img.crop((c * w, r * h, (c + 1) * w, (r + 1) * h))
                         for r in range(grid) for c in range(grid)}
            for name, tile in tiles.items():
                out = osp.join(folder, name + '.jpg')
                tile.save(out, quality=90)
                written.append(out)
    return written
