"""Reading a user's ``.npz`` file defensively: headers first, arrays only when they are known to fit.

An ``.npz`` is a zip of ``.npy`` files; each ``.npy`` starts with a header giving its dtype and
shape. A 2 MB compressed file can expand to 17 GiB of zeros, so the headers are read first and
the total checked against the memory available before any array is loaded. Arrays must hold real
numbers: complex values, text and pickled objects are refused here with a message, never converted.
"""

from __future__ import annotations

import math
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gradverify.errors import InputError
from gradverify.sizing import check_array_bytes

__all__ = ["NpzFile", "open_npz"]

_FIX = "save it with numpy.savez(path, W1=..., b1=..., X=..., y=...) (plain numeric arrays, no pickled objects)"


@dataclass(frozen=True)
class NpzFile:
    """An ``.npz`` whose headers have been read and checked; ``load(key)`` reads one array."""

    path: Path
    shapes: dict[str, tuple[int, ...]]
    dtypes: dict[str, np.dtype]
    ignored: tuple[str, ...] = field(default_factory=tuple)  # members that are not .npy arrays

    def load(self, key: str) -> np.ndarray:
        """The array ``key``, as stored (dtype checked already); a clear ``InputError`` if it cannot be read."""
        try:
            with np.load(self.path, allow_pickle=False) as f:
                arr = f[key]
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as exc:
            raise InputError(f"Cannot read the array {key!r} from {self.path}", received=f"{type(exc).__name__}: {exc}",
                             fix="the file looks damaged; " + _FIX) from None
        if arr.shape != self.shapes[key]:  # the data did not match its own header
            raise InputError(f"The array {key!r} in {self.path} does not match its header",
                             expected=f"shape {self.shapes[key]}", received=f"shape {arr.shape}", fix=_FIX)
        return arr


def _header(member, name: str, path: Path) -> tuple[tuple[int, ...], np.dtype]:
    try:
        version = np.lib.format.read_magic(member)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _fortran, dtype = read(member)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, SyntaxError) as exc:
        raise InputError(f"The array {name!r} in {path} has no readable .npy header", received=f"{type(exc).__name__}: {exc}",
                         fix=_FIX) from None
    return tuple(int(n) for n in shape), dtype


def _check_dtype(name: str, dtype: np.dtype, path: Path) -> None:
    kind = dtype.kind
    if kind == "c":
        raise InputError(f"The array {name!r} in {path} holds complex numbers", expected="real numbers (float, int or bool arrays)",
                         received=f"dtype {dtype}", fix=f"save {name}.real if the imaginary part is meant to be 0; gradients here are of real parameters")
    if kind not in "biuf":
        what = {"O": "pickled Python objects", "U": "text", "S": "bytes", "V": "structured records", "M": "dates", "m": "time spans"}.get(kind, str(dtype))
        raise InputError(f"The array {name!r} in {path} does not hold numbers", expected="real numbers (float, int or bool arrays)",
                         received=f"{what} (dtype {dtype})", fix=_FIX)


def open_npz(path: Path) -> NpzFile:
    """Open ``path`` as an ``.npz`` and check every header before anything is loaded.

    Raises:
        InputError: an empty or non-zip file, a ``.npy`` instead of an ``.npz``, unreadable or
            non-numeric arrays, or arrays that would not fit in the memory available.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            start = fh.read(6)
    except OSError as exc:
        raise InputError(f"Cannot read {path}", received=exc.strerror or str(exc), fix="check the --npz path") from None
    if size == 0:
        raise InputError(f"{path} is empty (0 bytes)", expected="an .npz archive of arrays", received="an empty file", fix=_FIX)
    if start == b"\x93NUMPY":
        raise InputError(f"{path} is a single .npy array, not an .npz archive", expected="an .npz with W1, b1, …, X and Y or y",
                         received="one array saved with numpy.save", fix=_FIX)
    if not zipfile.is_zipfile(path):
        raise InputError(f"Cannot read {path} as an .npz file", expected="a zip archive of .npy arrays (numpy.savez)",
                         received=f"{size:,} bytes that are not a zip archive", fix=_FIX)
    shapes: dict[str, tuple[int, ...]] = {}
    dtypes: dict[str, np.dtype] = {}
    ignored = []
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    ignored.append(info.filename)
                    continue
                name = info.filename[:-4]
                with zf.open(info) as member:
                    shape, dtype = _header(member, name, path)
                _check_dtype(name, dtype, path)
                shapes[name], dtypes[name] = shape, dtype
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as exc:
        raise InputError(f"Cannot read {path} as an .npz file", received=f"{type(exc).__name__}: {exc}", fix=_FIX) from None
    total = sum(8 * math.prod(s) for s in shapes.values())  # as float64, which is what they become
    check_array_bytes(total, what=f"The arrays in {path}", fix="use fewer examples (rows of X) or a smaller network")
    return NpzFile(path, shapes, dtypes, tuple(ignored))
