"""Wire protocol between the grader and its sandboxed worker: length-prefixed frames on pipes.

A *frame* is a 4-byte little-endian length followed by that many bytes. A *message* is one JSON
header frame followed by one ``.npy`` frame per array in it. The header is
``{"v": 1, "n": <number of arrays>, "m": <tree>}`` where a tree is built from

* ``null``, ``true``/``false``, integers, floats (``NaN``/``Infinity`` allowed), strings, lists;
* ``{"$d": {<str>: <tree>, ...}}`` — a dict with string keys;
* ``{"$a": <i>}`` — the i-th array of the message, each index used exactly once;
* ``{"$s": [<offset>, <dtype>, [<shape>...]]}`` — an array in a shared memory segment sent beside
  the message (requests only: the grader puts the arguments in a sealed, read-only segment, and
  a reader accepts these nodes only when told to, see ``Reader(segments=True)``).

Tuples travel as lists. Arrays travel as ``.npy`` (format 1.0) of bool, int64, uint64 or
float64. The reader (the grader's side) trusts nothing: frame lengths, the header size, nesting
depth and the number of arrays are capped *before* anything is allocated; an ``.npy`` header must
describe a plain numeric dtype (bool/int/uint/float, native or little endian, no fields, no
objects) whose shape times itemsize is exactly the bytes received; the decoded size of all arrays of a message
(after widening to 8 bytes) is capped *before* any is decoded; arrays are then copied into
plain, writable, C-ordered ndarrays — float64 for floats, int64 for (u)ints (float64 when a uint64
does not fit), bool for bools. Anything else raises :class:`ProtocolError`.

This module imports only the standard library and numpy: the sandbox copies it next to the worker,
which must not be able to import gradverify.
"""

from __future__ import annotations

import io
import json
import math
import struct
from dataclasses import dataclass

import numpy as np

__all__ = ["Caps", "ProtocolError", "UnsupportedValue", "pack", "Reader", "resolve_segments", "SegmentRef", "SEGMENT_DTYPES"]

PREFIX = struct.Struct("<I")
_NPY_MAGIC = b"\x93NUMPY"
_NPY_HEADER_MAX = 4096  # our writer uses < 128 bytes; numpy's own reader allows 10000
_MAX_NDIM = 32
_MAX_DIM = 1 << 40
_INT64_MAX = (1 << 63) - 1
_SEGMENT_ALIGN = 64
SEGMENT_DTYPES = ("<f8", "<i8", "<u8", "|b1")  # what pack writes into a segment


class ProtocolError(ValueError):
    """A frame or message that breaks the protocol: too large, malformed, or lying about itself."""


class UnsupportedValue(TypeError):
    """A value that cannot be sent: not one of the types the protocol carries, or too large."""


@dataclass(frozen=True)
class Caps:
    """Upper bounds a reader enforces before allocating anything.

    Args:
        header_bytes: largest JSON header frame.
        array_bytes: largest ``.npy`` frame (header included).
        message_bytes: largest message, all frames together.
        decoded_bytes: largest total size of a message's arrays once decoded (every number
            widened to 8 bytes): a reply of a million 1-byte integers costs 8 MB, not 1.
        arrays: most arrays in one message.
        depth: deepest nesting of lists/dicts in a tree.
    """

    header_bytes: int = 1 << 20
    array_bytes: int = 256 << 20
    message_bytes: int = 512 << 20
    decoded_bytes: int = 512 << 20
    arrays: int = 4096
    depth: int = 64

    def __post_init__(self) -> None:
        for name in ("header_bytes", "array_bytes", "message_bytes", "decoded_bytes", "arrays", "depth"):
            value = getattr(self, name)
            if type(value) is not int or value <= 0:
                raise ValueError(f"Caps.{name} must be a positive int, got {value!r}")
        if self.array_bytes >= 1 << 32 or self.header_bytes >= 1 << 32:
            raise ValueError("frame caps must stay below 4 GiB (the length prefix is 32-bit)")


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def pack(tree: object, *, caps: Caps = Caps(), segment: bytearray | None = None) -> list[bytes | memoryview]:
    """Encode ``tree`` as a message: a list of buffers to write in order.

    Numpy scalars become Python scalars, tuples become lists, ndarrays become ``.npy`` frames —
    or, when ``segment`` is given, are appended to it (64-byte aligned) and referenced by
    ``$s`` nodes, for the reader to map instead of copying.

    Raises:
        UnsupportedValue: a value of another type (the message names it), a dict key that is
            not a string, an int beyond 64 bits, an array of a non-numeric dtype, or a message
            beyond ``caps``.
    """
    arrays: list[np.ndarray] = []
    node = _encode(tree, arrays, caps, 0)
    if segment is not None:
        node = _to_segment(node, arrays, segment)
        arrays = []
    header = json.dumps({"v": 1, "n": len(arrays), "m": node}, separators=(",", ":")).encode()
    if len(header) > caps.header_bytes:
        raise UnsupportedValue(f"message header of {len(header)} bytes exceeds {caps.header_bytes}")
    buffers: list[bytes | memoryview] = [PREFIX.pack(len(header)) + header]
    total = len(header)
    for arr in arrays:
        npy_header = _npy_header(arr)
        size = len(npy_header) + arr.nbytes
        total += size
        if size > caps.array_bytes or total > caps.message_bytes:
            raise UnsupportedValue(
                f"array of shape {arr.shape} ({arr.nbytes} bytes) exceeds the size cap"
            )
        buffers.append(PREFIX.pack(size) + npy_header)
        if arr.nbytes:
            buffers.append(memoryview(arr.reshape(-1)).cast("B"))
    return buffers


def _encode(obj: object, arrays: list[np.ndarray], caps: Caps, depth: int) -> object:
    if depth > caps.depth:
        raise UnsupportedValue(f"value nested deeper than {caps.depth} levels")
    kind = type(obj)
    if obj is None or kind is bool or kind is str or kind is float:
        return obj
    if kind is int:
        if not -_INT64_MAX - 1 <= obj <= _INT64_MAX:
            raise UnsupportedValue("int beyond the 64-bit range")
        return obj
    if isinstance(obj, np.ndarray):
        return _encode_array(obj, arrays, caps)
    if isinstance(obj, np.generic):
        return _encode_scalar(obj)
    if isinstance(obj, (list, tuple)):
        items = list.__iter__(obj) if isinstance(obj, list) else tuple.__iter__(obj)
        return [_encode(item, arrays, caps, depth + 1) for item in items]
    if isinstance(obj, dict):
        out = {}
        for key, value in dict.items(obj):
            if type(key) is not str:
                raise UnsupportedValue(f"dict key of type {type(key).__name__} (only str keys)")
            out[key] = _encode(value, arrays, caps, depth + 1)
        return {"$d": out}
    if isinstance(obj, bool):
        return bool(obj)
    if isinstance(obj, int):  # IntEnum and other int subclasses
        return _encode(int(obj), arrays, caps, depth)
    if isinstance(obj, float):
        return float(obj)
    raise UnsupportedValue(f"values of type {kind.__module__}.{kind.__qualname__} cannot be sent")


def _to_segment(node: object, arrays: list[np.ndarray], segment: bytearray) -> object:
    """Move every array of an encoded tree into ``segment``; ``$a`` nodes become ``$s`` nodes."""
    if type(node) is list:
        return [_to_segment(item, arrays, segment) for item in node]
    if type(node) is dict:
        ((tag, body),) = node.items()
        if tag == "$d":
            return {"$d": {key: _to_segment(value, arrays, segment) for key, value in body.items()}}
        arr = arrays[body]
        segment.extend(b"\0" * (-len(segment) % _SEGMENT_ALIGN))
        offset = len(segment)
        segment.extend(memoryview(arr.reshape(-1)).cast("B") if arr.nbytes else b"")
        return {"$s": [offset, arr.dtype.str, [int(n) for n in arr.shape]]}
    return node


def _encode_scalar(obj: np.generic) -> object:
    kind = obj.dtype.kind
    if kind == "b":
        return bool(obj)
    if kind in "iu":
        value = int(obj)
        return float(value) if value > _INT64_MAX else value
    if kind == "f":
        return float(obj)
    raise UnsupportedValue(f"numpy scalar of dtype {obj.dtype} (only bool/int/float)")


def _encode_array(obj: np.ndarray, arrays: list[np.ndarray], caps: Caps) -> dict:
    arr = np.asarray(obj)  # a plain base-class view: subclass attributes are never consulted
    kind = arr.dtype.kind
    if kind not in "biuf" or arr.dtype.fields is not None:
        raise UnsupportedValue(f"array of dtype {arr.dtype} (only bool/int/uint/float)")
    if len(arrays) >= caps.arrays:
        raise UnsupportedValue(f"more than {caps.arrays} arrays in one message")
    target = {"b": np.bool_, "i": np.int64, "u": np.uint64, "f": np.float64}[kind]
    if arr.size * np.dtype(target).itemsize > caps.array_bytes:
        raise UnsupportedValue(
            f"array of shape {arr.shape} exceeds the {caps.array_bytes}-byte cap"
        )
    wire = np.asarray(arr, dtype=np.dtype(target).newbyteorder("<"), order="C")
    arrays.append(wire)
    return {"$a": len(arrays) - 1}


def _npy_header(arr: np.ndarray) -> bytes:
    """The ``.npy`` 1.0 preamble numpy itself would write for a C-ordered array."""
    text = "{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (
        arr.dtype.str,
        tuple(int(n) for n in arr.shape),
    )
    pad = 64 - (len(_NPY_MAGIC) + 4 + len(text) + 1) % 64
    text = text + " " * (pad % 64) + "\n"
    return _NPY_MAGIC + b"\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


class Reader:
    """Incremental, validating message reader: ``feed`` bytes, then ``pop`` whole messages.

    Every length is checked against :class:`Caps` as soon as its 4 bytes arrive, so a peer that
    announces a 4 GiB frame costs 4 bytes, not 4 GiB.
    """

    def __init__(self, caps: Caps = Caps(), *, segments: bool = False):
        self.caps = caps
        self.segments = segments  # accept ``$s`` nodes (the worker's side: requests from the grader)
        self._buf = bytearray()
        self._pos = 0
        self._tree: object = None
        self._need = -1  # arrays still expected for the current message; -1: awaiting header
        self._arrays: list[np.ndarray] = []
        self._size = 0
        self._decoded = 0

    def wanted(self) -> int:
        """How many more bytes would complete the current frame (at least 1)."""
        have = len(self._buf) - self._pos
        if have < PREFIX.size:
            return PREFIX.size - have
        (length,) = PREFIX.unpack_from(self._buf, self._pos)
        return max(1, PREFIX.size + length - have)

    def feed(self, data: bytes) -> None:
        self._buf += data

    def pop(self) -> tuple[bool, object]:
        """``(True, tree)`` when a whole message has arrived, else ``(False, None)``.

        Raises:
            ProtocolError: the bytes so far cannot be the start of a valid message.
        """
        while True:
            frame = self._frame()
            if frame is None:
                return False, None
            try:
                if self._need < 0:
                    self._start(frame)
                else:
                    self._arrays.append(read_npy(frame, self.caps, decoded_so_far=self._decoded))
                    self._decoded += self._arrays[-1].nbytes
                    self._need -= 1
            finally:
                frame.release()  # so the buffer can be compacted
            if self._need == 0:
                tree = _substitute(self._tree, self._arrays)
                self._tree, self._arrays, self._need, self._size, self._decoded = None, [], -1, 0, 0
                self._compact()
                return True, tree

    def _frame(self) -> memoryview | None:
        have = len(self._buf) - self._pos
        if have < PREFIX.size:
            return None
        (length,) = PREFIX.unpack_from(self._buf, self._pos)
        cap = self.caps.header_bytes if self._need < 0 else self.caps.array_bytes
        if length > cap:
            kind = "header" if self._need < 0 else "array"
            raise ProtocolError(f"{kind} frame of {length} bytes exceeds the cap of {cap}")
        if self._size + length > self.caps.message_bytes:
            raise ProtocolError(f"message exceeds the cap of {self.caps.message_bytes} bytes")
        if have < PREFIX.size + length:
            return None
        self._size += length
        start = self._pos + PREFIX.size
        self._pos = start + length
        return memoryview(self._buf)[start : start + length]

    def _compact(self) -> None:
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0

    def _start(self, frame: memoryview) -> None:
        try:
            header = json.loads(bytes(frame).decode("utf-8"))
        except (ValueError, RecursionError) as exc:
            raise ProtocolError(f"message header is not valid JSON: {exc}") from None
        if not isinstance(header, dict) or set(header) != {"v", "n", "m"} or header["v"] != 1:
            raise ProtocolError("message header must be {'v': 1, 'n': ..., 'm': ...}")
        count = header["n"]
        if type(count) is not int or not 0 <= count <= self.caps.arrays:
            raise ProtocolError(f"message announces {count!r} arrays (cap {self.caps.arrays})")
        used = _check_tree(header["m"], self.caps.depth, self.segments)
        if sorted(used) != list(range(count)):
            raise ProtocolError("array placeholders do not match the announced array count")
        self._tree, self._need, self._arrays = header["m"], count, []


def _check_tree(root: object, max_depth: int, segments: bool = False) -> list[int]:
    """Validate a decoded JSON tree iteratively; return the array indices it uses."""
    used: list[int] = []
    stack = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise ProtocolError(f"message nested deeper than {max_depth} levels")
        if node is None or type(node) in (bool, str, float):
            continue
        if type(node) is int:
            if not -_INT64_MAX - 1 <= node <= _INT64_MAX:
                raise ProtocolError("int beyond the 64-bit range")
            continue
        if type(node) is list:
            stack.extend((item, depth + 1) for item in node)
            continue
        if type(node) is dict and len(node) == 1:
            ((tag, body),) = node.items()
            if tag == "$a" and type(body) is int:
                used.append(body)
                continue
            if tag == "$d" and type(body) is dict:
                stack.extend((item, depth + 1) for item in body.values())
                continue
            if tag == "$s" and segments and _segment_node_ok(body):
                continue
        raise ProtocolError(f"unexpected node in message: {str(node)[:80]!r}")
    return used


def _segment_node_ok(body: object) -> bool:
    return (type(body) is list and len(body) == 3 and type(body[0]) is int and body[0] >= 0
            and body[1] in SEGMENT_DTYPES and type(body[2]) is list and len(body[2]) <= _MAX_NDIM
            and all(type(n) is int and 0 <= n <= _MAX_DIM for n in body[2]))


@dataclass(frozen=True)
class SegmentRef:
    """Where an array of a request lies in its shared segment (a decoded ``$s`` node)."""

    offset: int
    dtype: str
    shape: list


def resolve_segments(node: object, buffer, *, writable: bool = False) -> object:
    """Replace the ``SegmentRef`` leaves of a decoded tree by arrays over ``buffer`` (copies when ``writable``).

    Over a read-only buffer (a read-only mapping of a sealed file), the arrays are read-only and
    cannot be made writable: ``setflags(write=True)`` fails because their memory is not.

    Raises:
        ProtocolError: a node that points outside the buffer.
    """
    if type(node) is list:
        return [resolve_segments(item, buffer, writable=writable) for item in node]
    if type(node) is dict:
        return {key: resolve_segments(value, buffer, writable=writable) for key, value in node.items()}
    if type(node) is not SegmentRef:
        return node
    offset, shape = node.offset, node.shape
    dtype = np.dtype(node.dtype)
    count = math.prod(shape)
    if offset + count * dtype.itemsize > len(buffer):
        raise ProtocolError("a shared array points outside its segment")
    arr = np.frombuffer(buffer, dtype=dtype, count=count, offset=offset) if count else np.zeros(0, dtype)
    arr = arr.reshape(shape)
    return arr.copy() if writable else arr


def _substitute(node: object, arrays: list[np.ndarray]) -> object:
    if type(node) is list:
        return [_substitute(item, arrays) for item in node]
    if type(node) is dict:
        ((tag, body),) = node.items()
        if tag == "$a":
            return arrays[body]
        if tag == "$s":
            return SegmentRef(*body)  # resolved by the worker against its segment (resolve_segments)
        return {key: _substitute(value, arrays) for key, value in body.items()}
    return node


def read_npy(frame: memoryview | bytes, caps: Caps = Caps(), *, decoded_so_far: int = 0) -> np.ndarray:
    """Validate one ``.npy`` frame and copy it into a plain ndarray (see the module docstring).

    Args:
        frame: the frame's bytes.
        caps: the caps; ``decoded_bytes`` bounds ``decoded_so_far`` plus this array once widened.
        decoded_so_far: bytes already decoded for the same message.

    Raises:
        ProtocolError: a malformed header, a non-numeric or foreign-endian dtype, a shape
            that does not match the bytes, or a decoded size beyond the cap.
    """
    view = memoryview(frame).cast("B")
    if len(view) < 10 or bytes(view[:6]) != _NPY_MAGIC:
        raise ProtocolError("array frame does not start with the .npy magic")
    major = view[6]
    if major == 1:
        (hlen,), start = struct.unpack_from("<H", view, 8), 10
    elif major == 2:
        (hlen,), start = struct.unpack_from("<I", view, 8), 12
    else:
        raise ProtocolError(f".npy format version {major}.{view[7]} (only 1.0 and 2.0)")
    if hlen > _NPY_HEADER_MAX or start + hlen > len(view):
        raise ProtocolError(f".npy header of {hlen} bytes is too long or truncated")
    fp = io.BytesIO(bytes(view[: start + hlen]))
    try:
        np.lib.format.read_magic(fp)
        fmt = np.lib.format
        reader = fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0
        shape, fortran, dtype = reader(fp, max_header_size=_NPY_HEADER_MAX)
    except Exception as exc:  # numpy raises ValueError, SyntaxError, TypeError... on junk
        raise ProtocolError(f"bad .npy header: {type(exc).__name__}: {exc}") from None
    _check_dtype(dtype)
    if (
        type(shape) is not tuple
        or len(shape) > _MAX_NDIM
        or any(type(n) is not int or not 0 <= n <= _MAX_DIM for n in shape)
    ):
        raise ProtocolError(f".npy shape {shape!r} is not a tuple of at most {_MAX_NDIM} sizes")
    count = math.prod(shape)
    data = view[start + hlen :]
    if count * dtype.itemsize != len(data):
        raise ProtocolError(
            f".npy header claims shape {shape} of {dtype} ({count * dtype.itemsize} bytes) "
            f"but the frame holds {len(data)} bytes"
        )
    target = {"b": np.bool_, "i": np.int64, "u": np.int64, "f": np.float64}[dtype.kind]
    decoded = count * np.dtype(target).itemsize
    if decoded_so_far + decoded > caps.decoded_bytes:
        raise ProtocolError(f".npy array of shape {shape} decodes to {decoded} bytes; with the message's other arrays "
                            f"that exceeds the cap of {caps.decoded_bytes} (checked before decoding)")
    flat = np.frombuffer(data, dtype=dtype, count=count)
    if dtype.kind == "u" and dtype.itemsize == 8 and count and int(flat.max()) > _INT64_MAX:
        target = np.float64
    out = np.array(flat.reshape(shape, order="F" if fortran else "C"), dtype=target, order="C")
    if type(out) is not np.ndarray or not out.flags.writeable:  # belt and braces
        raise ProtocolError("decoded array is not a plain ndarray")
    return out


def _check_dtype(dtype: np.dtype) -> None:
    if (
        not isinstance(dtype, np.dtype)
        or dtype.kind not in "biuf"
        or dtype.fields is not None
        or dtype.subdtype is not None
    ):
        raise ProtocolError(f".npy dtype {dtype!r} is not a plain bool/int/uint/float dtype")
    if dtype.hasobject or dtype.itemsize not in (1, 2, 4, 8):
        raise ProtocolError(f".npy dtype {dtype} is not allowed")
    if dtype.byteorder not in ("=", "|") and not dtype.isnative:
        raise ProtocolError(f".npy dtype {dtype.str} is not in native byte order")
