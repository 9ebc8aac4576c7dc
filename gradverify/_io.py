"""Writing files so that a crash never leaves half of one: the single atomic writer of the package."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write ``data`` to ``path``: a reader sees the old content or the new, never half.

    A temporary file in the same folder is written, flushed to disk and renamed over ``path``,
    with the permissions a plain ``open`` would give. A path that exists and is not a regular
    file (``/dev/stdout``, a pipe, a symlink to one) is written in place instead: renaming over
    it would replace the device with a file.
    """
    path = Path(path)
    mode = "wb" if isinstance(data, bytes) else "w"
    encoding = {} if mode == "wb" else {"encoding": "utf-8"}
    if path.exists() and not stat.S_ISREG(os.stat(path).st_mode):
        with open(path, mode, **encoding) as fh:
            fh.write(data)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **encoding) as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; results are for the class to read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
