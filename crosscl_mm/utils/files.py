"""Writing files so that readers never see a partial one."""
import contextlib
import errno
import os
import os.path as osp
import secrets
from typing import Any, Callable, Iterator

__all__ = ['save_atomically', 'open_atomically']


def _create_temporary_beside(target: str):
    """A new, empty file in ``target``'s folder, created as ``open(path, 'w')``
    would create it: permission bits ``0o666`` less the process umask
    (``tempfile.mkstemp`` would give ``0o600``)."""
    folder, name = osp.split(target)
    for _ in range(100):
        tmp = osp.join(folder, f'.{name}.{secrets.token_hex(4)}.partial')
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, 'no free temporary name', osp.join(folder, name))


@contextlib.contextmanager
def open_atomically(path: str, mode: str = 'wb', **kwargs) -> Iterator[Any]:
    """``open(path, mode)`` for writing, except that the content appears at
    ``path`` all at once when the ``with`` block ends without an error, and
    not at all if it raises: the data go to a temporary file beside the
    target, which is then renamed over it (atomic on POSIX file systems).

    What a plain ``open`` would give is kept: a new file gets the permission
    bits of the process umask, a replaced file keeps its mode (and its group,
    where the owner may set it), a file we may not write is refused with
    PermissionError, and a path that is a symbolic link is written through to
    the link's target (the link stays). One difference remains: other hard
    links to a replaced file keep the old content.

    Args:
        path: the file to write.
        mode: a write mode of :func:`open` (``'w'``, ``'wb'``, ...).
        **kwargs: passed on to :func:`open` (``encoding``, ...).
    """
    if 'w' not in mode or '+' in mode:
        raise ValueError(f'open_atomically writes a whole file; mode {mode!r} is not a write mode')
    target = osp.realpath(path)  # through symbolic links, as open() writes
    folder = osp.dirname(target)
    os.makedirs(folder, exist_ok=True)
    try:
        replaced = os.stat(target)
    except FileNotFoundError:
        replaced = None
    if replaced is not None and not os.access(target, os.W_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
    fd, tmp = _create_temporary_beside(target)
    try:
        f = open(fd, mode, **kwargs)
    except BaseException:
        os.close(fd)
        os.remove(tmp)
        raise
    try:
        with f:
            if replaced is not None:  # open() keeps a replaced file's mode and group
                os.chmod(tmp, replaced.st_mode & 0o7777)
                if replaced.st_gid != os.fstat(fd).st_gid:
                    with contextlib.suppress(OSError):
                        os.chown(tmp, -1, replaced.st_gid)
            yield f
            f.flush()
            os.fsync(fd)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def save_atomically(path: str, write: Callable[[Any], None]) -> None:
    """Call ``write(fileobj)`` on a binary file opened with
    :func:`open_atomically`: readers never see a partial file, a failure
    leaves no output behind, and the file's mode and symbolic links are those
    a plain ``open(path, 'wb')`` would give."""
    with open_atomically(path, 'wb') as f:
        write(f)
