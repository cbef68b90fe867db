"""Atomic writes (crosscl_mm.utils.files) behave as a plain ``open()`` does in
everything but atomicity: the same mode, the same handling of symbolic links
and unwritable files. Each case is run both ways and compared."""
import os
import os.path as osp

import pytest

from crosscl_mm.utils.files import open_atomically, save_atomically


def write_plain(path, data):
    with open(path, 'wb') as f:
        f.write(data)


def write_atomic(path, data):
    save_atomically(path, lambda f: f.write(data))


def mode(path):
    return oct(os.stat(path).st_mode & 0o7777)


@pytest.fixture()
def umask():
    """Set the process umask for one test, restoring it afterwards."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


@pytest.mark.parametrize('mask', [0o022, 0o002, 0o077, 0o027], ids=oct)
def test_new_file_gets_the_umask_mode_as_open_gives(tmp_path, umask, mask):
    umask(mask)
    write_plain(str(tmp_path / 'plain'), b'x')
    write_atomic(str(tmp_path / 'atomic'), b'x')
    assert mode(tmp_path / 'atomic') == mode(tmp_path / 'plain') == oct(0o666 & ~mask)


@pytest.mark.parametrize('existing', [0o640, 0o604, 0o600, 0o664], ids=oct)
def test_replaced_file_keeps_its_mode_as_open_keeps_it(tmp_path, umask, existing):
    umask(0o022)
    for name, write in (('plain', write_plain), ('atomic', write_atomic)):
        path = str(tmp_path / name)
        write_plain(path, b'old')
        os.chmod(path, existing)
        write(path, b'new')
        with open(path, 'rb') as f:
            assert f.read() == b'new'
    assert mode(tmp_path / 'atomic') == mode(tmp_path / 'plain') == oct(existing)


@pytest.mark.parametrize('dangling', [False, True], ids=['link', 'dangling-link'])
def test_symbolic_link_is_written_through_as_open_does(tmp_path, dangling):
    for name, write in (('plain', write_plain), ('atomic', write_atomic)):
        target_dir = tmp_path / f'{name}_store'
        target_dir.mkdir()
        target = target_dir / 'epoch_1.pth'
        if not dangling:
            target.write_bytes(b'old')
        link = tmp_path / f'{name}_link.pth'
        os.symlink(target, link)
        write(str(link), b'new')
        assert osp.islink(link) and os.readlink(link) == str(target)
        assert target.read_bytes() == b'new'
        assert sorted(os.listdir(target_dir)) == ['epoch_1.pth']  # no temporary left


def test_unwritable_file_is_refused_as_open_refuses_it(tmp_path):
    outcomes = []
    for name, write in (('plain', write_plain), ('atomic', write_atomic)):
        path = str(tmp_path / name)
        write_plain(path, b'old')
        os.chmod(path, 0o444)
        try:
            write(path, b'new')
            outcomes.append('written')
        except PermissionError:
            outcomes.append('refused')
        with open(path, 'rb') as f:
            outcomes.append(f.read())
    # Refused for a normal user, written for root: the same either way.
    assert outcomes[:2] == outcomes[2:]
    if os.geteuid() != 0:
        assert outcomes[:2] == ['refused', b'old']


def test_failure_keeps_the_old_file_and_leaves_nothing(tmp_path):
    path = str(tmp_path / 'last_checkpoint')
    write_atomic(path, b'epoch_1.pth')
    with pytest.raises(RuntimeError):
        with open_atomically(path, 'w') as f:
            f.write('epoch_2')
            raise RuntimeError('killed half way')
    assert open(path).read() == 'epoch_1.pth'
    assert os.listdir(tmp_path) == ['last_checkpoint']
    with pytest.raises(ValueError, match='not a write mode'):
        with open_atomically(path, 'r+'):
            pass
