import os
import os.path as osp
from typing import List, Sequence, Tuple

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from crosscl_mm.registry import DATASETS, TRANSFORMS

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp')


def scan_image_folder(root: str, extensions: Sequence[str] = IMAGE_EXTENSIONS,
                      name: str = 'data_root') -> Tuple[List[str], int]:
    """Every image file under ``root``, searched recursively (symlinks
    followed), in sorted order: ``(paths, number of other files ignored)``.

    The one scan of the project, so that the dataset and the tools that
    precompute per-image data (``tools/misc/generate_proposals.py``) see the
    same images.

    Raises:
        FileNotFoundError: ``root`` is not a folder or holds no image; the
            message calls it ``name`` (the config field or argument).
    """
    extensions = tuple(e.lower() for e in extensions)
    if not osp.isdir(root):
        raise FileNotFoundError(f'{name}={root!r} is not a folder of images')
    images, ignored = [], 0
    for folder, subdirs, files in os.walk(root, followlinks=True):
        subdirs.sort()
        for file in sorted(files):
            if file.lower().endswith(extensions):
                images.append(osp.join(folder, file))
            else:
                ignored += 1
    if not images:
        raise FileNotFoundError(f'no images ({", ".join(extensions)}) under {name}={root!r}')
    return images, ignored


@DATASETS.register_module()
class UnlabeledImageFolder(BaseDataset):
    """Every image file under ``data_root``, searched recursively.

    Works for ImageNet's ``train/`` (one folder per class; classes are
    ignored) and COCO's flat ``train2017/`` alike. The file list is built
    once, sorted, and the scan logs how many images it found and how many
    other files it ignored. Each item is ``dict(img_path=...)`` for the
    pipeline to load.

    Args:
        data_root: folder to scan.
        pipeline: transforms applied to each item.
        extensions: file suffixes (case-insensitive) counted as images.
        **kwargs: passed to :class:`mmengine.dataset.BaseDataset`.
    """

    def __init__(self, data_root: str, pipeline: Sequence = (),
                 extensions: Sequence[str] = IMAGE_EXTENSIONS, **kwargs) -> None:
        self.extensions = tuple(e.lower() for e in extensions)
        # Built through our registry, so the dataset also works outside a
        # Runner (whose default scope would otherwise pick the registry).
        pipeline = [TRANSFORMS.build(t) if isinstance(t, dict) else t for t in pipeline]
        super().__init__(data_root=data_root, ann_file='', pipeline=pipeline, **kwargs)

    def load_data_list(self) -> List[dict]:
        root = self.data_root
        images, ignored = scan_image_folder(
            root, self.extensions, name='train_dataloader.dataset.data_root')
        print_log(f'UnlabeledImageFolder: found {len(images)} images under {root} '
                  f'(ignored {ignored} other files)', logger='current')
        return [dict(img_path=path) for path in images]
