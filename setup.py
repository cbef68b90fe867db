import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def version():
    scope = {}
    with open(osp.join(HERE, 'crosscl_mm', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def add_mim_extension():
    """Expose configs/, tools/ and model-index.yml as ``crosscl_mm/.mim`` so
    that ``mim train crosscl_mm CONFIG`` finds them, as OpenMMLab packages do:
    symlinks for an editable install, copies otherwise."""
    if 'develop' in sys.argv or 'editable_wheel' in sys.argv or '--editable' in sys.argv:
        mode = 'symlink'
    elif any(cmd in sys.argv for cmd in ('sdist', 'bdist_wheel', 'install', 'build')):
        mode = 'copy'
    else:
        return
    mim_dir = osp.join(HERE, 'crosscl_mm', '.mim')
    os.makedirs(mim_dir, exist_ok=True)
    for name in ('configs', 'tools', 'model-index.yml'):
        src = osp.join(HERE, name)
        dst = osp.join(mim_dir, name)
        if not osp.exists(src):
            continue
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim_dir), dst)
        elif osp.isdir(src):
            shutil.copytree(src, dst)
        else:
            shutil.copyfile(src, dst)


add_mim_extension()
setup(
    name='crosscl_mm',
    version=version(),
    description='CrossCL self-supervised cross-stage regional contrastive pretraining '
                'for object detection, as an OpenMMLab plugin',
    long_description=open(osp.join(HERE, 'README.md'), encoding='utf-8').read()
    if osp.exists(osp.join(HERE, 'README.md')) else '',
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    include_package_data=True,
    package_data={'crosscl_mm': ['.mim/configs/**/*', '.mim/tools/**/*', '.mim/model-index.yml']},
    python_requires='>=3.8',
    install_requires=['mmengine>=0.7', 'mmdet>=3.0'],
    license='Apache License 2.0',
    zip_safe=False,
)
