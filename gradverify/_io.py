"""Writing files so that a crash never leaves half of one (the single atomic writer of the package),
and the plain JSON values and environment record that go into them."""

from __future__ import annotations

import importlib.metadata
import math
import os
import platform
import stat
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

__all__ = ["write_atomic", "jsonable", "environment"]


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


def jsonable(obj):
    """``obj`` as plain JSON values: numpy scalars and arrays unwrapped, non-finite floats as strings."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "tolist") and callable(obj.tolist):  # numpy arrays and scalars
        return jsonable(obj.tolist())
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float):
        if math.isnan(obj):
            return "NaN"
        if math.isinf(obj):
            return "Infinity" if obj > 0 else "-Infinity"
        return obj
    return str(obj)


def environment(packages: tuple[str, ...]) -> dict:
    """Python, platform and the versions of ``packages`` (distribution names): what shaped the numbers."""
    versions = {}
    for name in packages:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            version = getattr(sys.modules.get(name), "__version__", None)
            versions[name] = str(version) if version else "not installed"
    return {"python": platform.python_version(), "implementation": platform.python_implementation(),
            "platform": platform.platform(), "packages": versions}
