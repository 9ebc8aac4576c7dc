"""The sandbox: wire frames, the worker's calling convention, and hostile submissions.

Every hostile case checks three things: a clear failing result, a grader that survives (the test
process itself, and a sandbox that still answers afterwards), and that nothing carrying the
sandbox's marker is left running.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import socket
import struct
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gradverify.grading import frames, seccomp
from gradverify.grading.files import remove_tree
from gradverify.grading.isolation import Plan, landlock_abi
from gradverify.grading.sandbox import (
    KINDS,
    CallResult,
    Isolation,
    Limits,
    Sandbox,
    detect_isolation,
)

ISOLATION = detect_isolation()
LAYERS = set(ISOLATION.layers)
FAST = Limits(call_timeout=3.0, load_timeout=30.0)
HAS_FS_ALLOW_LIST = "fs-view" in LAYERS or any(name.startswith("landlock-abi") for name in LAYERS)
NO_FORK = "no-new-processes" in LAYERS
CONFINED_PROCESSES = "pid-ns" in LAYERS or NO_FORK
CONFINED_SIGNALS = bool({"pid-ns", "landlock-scoped-signals"} & LAYERS) or any(n.startswith("uid-") for n in LAYERS)


def _alive_with(marker: str) -> list[int]:
    """Processes (not zombies) whose environment holds ``marker``: checked without the sandbox."""
    needle = marker.encode() + b"\0"
    alive = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            environ = Path(f"/proc/{name}/environ").read_bytes()
            state = Path(f"/proc/{name}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in environ and state != b"Z":
            alive.append(int(name))
    return alive


def _write(tmp_path: Path, source: str, name: str = "submission.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


@contextlib.contextmanager
def sandbox(tmp_path: Path, source: str, *, limits: Limits = FAST, **kwargs):
    """A sandbox on ``source``; on exit, assert it is closed and left nothing running."""
    box = Sandbox(_write(tmp_path, source), limits=limits, **kwargs)
    try:
        yield box
    finally:
        box.close()
    assert _alive_with(box.marker) == [], "processes of the sandbox survived close()"


BENIGN = """
def ping(x=1):
    return x
"""

# ============================================================================================
# Frames
# ============================================================================================


def _roundtrip(tree, caps=frames.Caps()):
    data = b"".join(bytes(b) for b in frames.pack(tree))
    reader = frames.Reader(caps)
    reader.feed(data)
    ok, message = reader.pop()
    assert ok
    return message


def _frame(payload: bytes) -> bytes:
    return struct.pack("<I", len(payload)) + payload


def _header(tree, n: int) -> bytes:
    return _frame(json.dumps({"v": 1, "n": n, "m": tree}).encode())


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def test_frames_carry_nested_values_and_arrays_as_plain_copies():
    tree = {
        "scalars": [None, True, -3, 2.5, "text", float("inf")],
        "tuple": (1, (2, 3)),
        "numpy scalars": [np.float32(1.5), np.int16(-2), np.bool_(True)],
        "arrays": [np.arange(6.0).reshape(2, 3), np.asfortranarray(np.eye(3)), np.array(7.0), np.zeros((0, 4))],
        "ints": np.arange(4, dtype=np.int32),
        "bools": np.array([True, False]),
        "floats32": np.linspace(0, 1, 5, dtype=np.float32),
    }
    back = _roundtrip(tree)
    assert back["scalars"][:5] == [None, True, -3, 2.5, "text"] and back["scalars"][5] == float("inf")
    assert back["tuple"] == [1, [2, 3]]
    assert back["numpy scalars"] == [1.5, -2, True] and type(back["numpy scalars"][0]) is float
    for sent, got in zip(tree["arrays"], back["arrays"]):
        assert type(got) is np.ndarray and got.dtype == np.float64 and got.flags.c_contiguous
        assert got.flags.writeable and got.shape == sent.shape and np.array_equal(got, sent)
    assert back["ints"].dtype == np.int64 and back["bools"].dtype == np.bool_
    assert back["floats32"].dtype == np.float64


tree_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=5),
    hnp.arrays(st.sampled_from([np.float64, np.int64, np.bool_]), hnp.array_shapes(min_dims=0, max_dims=3, max_side=3)),
)
trees = st.recursive(
    tree_leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=10,
)


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return type(b) is np.ndarray and a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@settings(max_examples=40)
@given(trees, st.integers(1, 64))
def test_frames_round_trip_any_tree_fed_in_any_chunks(tree, chunk):
    data = b"".join(bytes(b) for b in frames.pack(tree))
    reader = frames.Reader()
    message = None
    for start in range(0, len(data), chunk):
        reader.feed(data[start : start + chunk])
        ok, got = reader.pop()
        if ok:
            message = got
    assert _same(tree, message)


@pytest.mark.parametrize(
    "value, match",
    [
        (object(), "object cannot be sent"),
        ({1, 2}, "set cannot be sent"),
        (1 + 2j, "complex cannot be sent"),
        ({1: "a"}, "dict key of type int"),
        (2**64, "64-bit"),
        (np.array([1 + 1j]), "dtype complex128"),
        (np.array(["a"]), "dtype <U1"),
        (np.array([object()]), "dtype object"),
        (np.complex64(1), "numpy scalar of dtype complex64"),
    ],
)
def test_pack_names_what_cannot_be_sent(value, match):
    with pytest.raises(frames.UnsupportedValue, match=match):
        frames.pack({"x": [value]})


def test_pack_refuses_arrays_over_the_cap_before_copying():
    huge = np.broadcast_to(np.zeros(1), (1 << 20, 1 << 20))  # 8 TiB, no memory behind it
    with pytest.raises(frames.UnsupportedValue, match="exceeds"):
        frames.pack(huge)


@pytest.mark.parametrize(
    "array, match",
    [
        (np.array([1.0 + 2j]), "not a plain"),
        (np.array(["text"]), "not a plain"),
        (np.array([1.0], dtype=">f8"), "byte order"),
        (np.zeros(2, dtype=[("a", "<f8")]), "not a plain"),
        (np.array([None, 1], dtype=object), "not a plain"),
        (np.array([1.0], dtype=np.longdouble), "not allowed"),
    ],
)
def test_read_npy_refuses_foreign_dtypes(array, match):
    with pytest.raises(frames.ProtocolError, match=match):
        frames.read_npy(_npy(array))


def _npy_raw(descr: str, shape: str, data: bytes) -> bytes:
    text = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {shape}, }}".ljust(117) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode() + data


def test_read_npy_refuses_headers_that_lie_about_the_size():
    good = _npy(np.zeros(4))
    assert np.array_equal(frames.read_npy(_npy_raw("<f8", "(4,)", b"\0" * 32)), np.zeros(4))
    with pytest.raises(frames.ProtocolError, match="claims shape"):
        frames.read_npy(good[:-8])  # one element missing
    with pytest.raises(frames.ProtocolError, match="claims shape"):
        frames.read_npy(good + b"\0" * 8)
    with pytest.raises(frames.ProtocolError, match="claims shape"):
        frames.read_npy(_npy_raw("<f8", "(1000000, 1000000)", b"\0" * 8))
    with pytest.raises(frames.ProtocolError, match="shape"):
        frames.read_npy(_npy_raw("<f8", "(-1, 8)", b"\0" * 8))
    with pytest.raises(frames.ProtocolError, match="shape"):
        frames.read_npy(_npy_raw("<f8", f"({2**80},)", b""))


@pytest.mark.parametrize(
    "payload, match",
    [
        (b"not npy at all", "magic"),
        (b"\x93NUMPY\x03\x00" + b"\0" * 20, "version"),
        (b"\x93NUMPY\x01\x00\xff\xff" + b" " * 100, "too long or truncated"),
        (b"\x93NUMPY\x01\x00\x10\x00{'descr': __import__('os')}", "bad .npy header"),
    ],
)
def test_read_npy_refuses_malformed_headers(payload, match):
    with pytest.raises(frames.ProtocolError, match=match):
        frames.read_npy(payload)


def test_reader_rejects_an_oversized_frame_from_its_length_prefix_alone():
    reader = frames.Reader(frames.Caps(header_bytes=1000))
    reader.feed(struct.pack("<I", 0xFFFFFFFF))  # nothing else needs to arrive
    with pytest.raises(frames.ProtocolError, match="exceeds the cap"):
        reader.pop()


@pytest.mark.parametrize(
    "data, match",
    [
        (_frame(b"{not json"), "not valid JSON"),
        (_frame(b"[1, 2]"), "must be"),
        (_frame(b'{"v": 2, "n": 0, "m": null}'), "must be"),
        (_header({"$x": 1}, 0), "unexpected node"),
        (_header({"$d": {}, "extra": 1}, 0), "unexpected node"),
        (_header({"$a": 0}, 0), "placeholders"),
        (_header([{"$a": 0}, {"$a": 0}], 2), "placeholders"),
        (_header(None, 10**9), "announces"),
        (_header(2**70, 0), "64-bit"),
        (_frame(b'{"v": 1, "n": 0, "m": ' + b"[" * 5000 + b"]" * 5000 + b"}"), "nested deeper|not valid JSON"),
        (_header({"$a": 0}, 1) + struct.pack("<I", 2**31), "array frame"),
    ],
)
def test_reader_rejects_malformed_messages(data, match):
    reader = frames.Reader(frames.Caps(array_bytes=1 << 20))
    reader.feed(data)
    with pytest.raises(frames.ProtocolError, match=match):
        reader.pop()


def test_reader_caps_the_whole_message():
    reader = frames.Reader(frames.Caps(message_bytes=2000))
    data = b"".join(bytes(b) for b in frames.pack([np.zeros(100), np.zeros(100), np.zeros(100)]))
    reader.feed(data)
    with pytest.raises(frames.ProtocolError, match="message exceeds"):
        reader.pop()


def test_reader_caps_the_decoded_size_before_decoding():
    # 1-byte integers widen to 8 bytes: what counts is the size after decoding, checked first
    data = b"".join(bytes(b) for b in frames.pack([np.ones(1000, dtype=np.int8)]))
    reader = frames.Reader(frames.Caps(decoded_bytes=4000))
    reader.feed(data)
    with pytest.raises(frames.ProtocolError, match="checked before decoding"):
        reader.pop()
    reader = frames.Reader(frames.Caps(decoded_bytes=8000))
    reader.feed(data)
    assert reader.pop()[1][0].dtype == np.int64


def test_shared_segments_are_read_only_views_and_refused_in_replies():
    segment = bytearray()
    data = b"".join(bytes(b) for b in frames.pack({"x": [np.arange(3.0), 7]}, segment=segment))
    assert len(segment) >= 24
    grader_side = frames.Reader()
    grader_side.feed(data)
    with pytest.raises(frames.ProtocolError, match="unexpected node"):
        grader_side.pop()  # a reply may never point into memory
    worker_side = frames.Reader(segments=True)
    worker_side.feed(data)
    tree = frames.resolve_segments(worker_side.pop()[1], bytes(segment))
    assert np.array_equal(tree["x"][0], np.arange(3.0)) and not tree["x"][0].flags.writeable and tree["x"][1] == 7
    with pytest.raises(frames.ProtocolError, match="outside"):
        frames.resolve_segments(frames.SegmentRef(0, "<f8", [100]), bytes(segment))


@pytest.mark.parametrize("reply, match", [
    ({"op": "result", "id": "c", "kind": "ok", "value": 1, "error": None, "traceback": None, "payload": "x"}, "unexpected keys"),
    ({"op": "result", "id": "c", "kind": "ok", "value": 1, "error": None}, "misses"),
    ({"op": "result", "id": "c", "kind": "exception", "value": 1, "error": "E", "traceback": None}, "carries a value"),
    ({"op": "result", "id": "c", "kind": "ok", "value": 1, "error": 3, "traceback": None}, "ill-typed"),
    ({"op": "result", "id": "other", "kind": "ok", "value": 1, "error": None, "traceback": None}, "another call"),
])
def test_a_reply_must_have_exactly_the_expected_keys_and_types(reply, match):
    from gradverify.grading.protocol import check_reply

    result, problem = check_reply(reply, "c")
    assert result.kind == "protocol" and match in problem


def test_caps_must_be_positive_and_fit_the_prefix():
    with pytest.raises(ValueError, match="positive"):
        frames.Caps(arrays=0)
    with pytest.raises(ValueError, match="4 GiB"):
        frames.Caps(array_bytes=1 << 32)


# ============================================================================================
# The API on well-behaved submissions
# ============================================================================================

TWO_LAYER = """
import numpy as np

calls = 0

class TwoLayerNet:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("__init__ must not run in the grader")

    def loss(self, X, y=None, reg=0.0):
        W1, b1, W2, b2 = (self.params[k] for k in ("W1", "b1", "W2", "b2"))
        h = np.maximum(0, X @ W1 + b1)
        scores = h @ W2 + b2
        if y is None:
            return scores
        shifted = scores - scores.max(axis=1, keepdims=True)
        p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
        n = X.shape[0]
        loss = -np.log(p[np.arange(n), y]).mean() + reg * ((W1 ** 2).sum() + (W2 ** 2).sum())
        d = p.copy()
        d[np.arange(n), y] -= 1
        d /= n
        grads = {"W2": h.T @ d + 2 * reg * W2, "b2": d.sum(axis=0)}
        dh = d @ W2.T * (h > 0)
        grads.update(W1=X.T @ dh + 2 * reg * W1, b1=dh.sum(axis=0))
        return loss, grads

def count():
    global calls
    calls += 1
    print("call", calls)
    return calls

def scale(x, factor=2.0):
    x *= factor          # modifies its input in place
    return (x.sum(), np.float32(factor), [x.shape])

def fails():
    return 1 / 0

def weird():
    return {"ok": [1, 2], "bad": object()}
"""


def _params(rng):
    return {"W1": rng.normal(size=(4, 5)), "b1": np.zeros(5), "W2": rng.normal(size=(5, 3)), "b2": np.zeros(3)}


def test_isolation_is_reported_and_full_where_the_machine_allows_it():
    assert isinstance(ISOLATION, Isolation) and ISOLATION.level in ("full", "partial", "minimal")
    assert {"session", "clean-env", "python-isolated", "rlimits"} <= LAYERS
    assert ISOLATION.level in str(ISOLATION)
    for layer, note in [("seccomp", "keyrings"), ("tmpfs-work", "host's disk"), ("sealed-inputs", "sealed memory")]:
        # a missing layer is never silent: the summary says what it leaves open
        assert layer in LAYERS or any(note in n for n in ISOLATION.notes), (layer, ISOLATION.notes)
    if os.geteuid() == 0 and shutil.which("unshare") and landlock_abi() and seccomp.supported():
        # The grading machines (and CI) are of this kind: every layer must be active there.
        assert ISOLATION.level == "full", ISOLATION
        assert {"pid-ns", "net-ns", "fs-view", "own-uid", "no-new-processes", "seccomp", "tmpfs-work", "sealed-inputs"} <= LAYERS


def test_a_method_is_called_on_an_instance_made_without_init(tmp_path):
    rng = np.random.default_rng(0)
    X, y, params = rng.normal(size=(6, 4)), np.array([0, 1, 2, 0, 1, 2]), _params(rng)
    with sandbox(tmp_path, TWO_LAYER) as box:
        assert box.start().ok
        result = box.call("TwoLayerNet.loss", (X, y), {"reg": 0.1}, attrs={"params": params})
    assert result.ok, result
    loss, grads = result.value
    assert isinstance(loss, float) and loss > 0
    assert set(grads) == {"W1", "b1", "W2", "b2"}
    assert all(type(g) is np.ndarray and g.dtype == np.float64 and g.shape == params[k].shape for k, g in grads.items())
    assert result.elapsed > 0 and result.stdout == "" and result.stderr == ""


def test_module_state_persists_between_calls_of_one_worker(tmp_path):
    with sandbox(tmp_path, TWO_LAYER) as box:
        first, second = box.call("count"), box.call("count")
    assert (first.value, second.value) == (1, 2)
    assert (first.stdout, second.stdout) == ("call 1\n", "call 2\n")


@pytest.mark.skipif("sealed-inputs" not in LAYERS, reason="no sealed memory files on this machine")
def test_array_arguments_are_read_only_memory_the_submission_cannot_make_writable(tmp_path):
    source = TWO_LAYER + """
def force(x):
    import ctypes
    try:
        x.setflags(write=True)
    except ValueError as exc:
        first = str(exc)
    else:
        first = "writable"
    libc = ctypes.CDLL(None, use_errno=True)
    page = ctypes.c_void_p(x.ctypes.data & ~4095)
    mprotect = libc.mprotect(page, ctypes.c_size_t(4096), 3)  # PROT_READ | PROT_WRITE
    return [first, mprotect, ctypes.get_errno()]
"""
    x = np.ones((2, 3))
    with sandbox(tmp_path, source) as box:
        sealed = box.call("scale", (x,), {"factor": 3.0})
        forced = box.call("force", (x,))
        copied = box.call("scale", (x,), {"factor": 3.0}, writable=True)
    assert sealed.kind == "exception" and "read-only" in sealed.error
    assert forced.ok and forced.value[0] == "cannot set WRITEABLE flag to True of this array", forced
    assert forced.value[1:] == [-1, 13]  # mprotect: EACCES, the mapping is of a read-only, sealed file
    assert copied.ok and copied.value == [18.0, 3.0, [[2, 3]]]  # tuples come back as lists, np scalars as floats
    assert np.array_equal(x, np.ones((2, 3))), "the grader's own array is never touched"


def test_a_students_exception_comes_back_with_its_traceback(tmp_path):
    with sandbox(tmp_path, TWO_LAYER) as box:
        result = box.call("fails")
        assert box.call("count").ok, "the worker survives an exception"
    assert result.kind == "exception" and result.error == "ZeroDivisionError: division by zero"
    assert "submission.py" in result.traceback and "return 1 / 0" in result.traceback
    assert "_gv_worker" not in result.traceback


@pytest.mark.parametrize(
    "target, kwargs, match",
    [
        ("missing", {}, "defines no 'missing'"),
        ("calls", {}, "is a int, not a function"),
        ("TwoLayerNet.predict", {"attrs": {}}, "has no method 'predict'"),
        ("count.x", {}, "not a class"),
    ],
)
def test_a_missing_target_is_reported_as_such(tmp_path, target, kwargs, match):
    with sandbox(tmp_path, TWO_LAYER) as box:
        result = box.call(target, **kwargs)
    assert result.kind == "target" and match in result.error


def test_an_unsupported_return_value_is_named(tmp_path):
    with sandbox(tmp_path, TWO_LAYER) as box:
        result = box.call("weird")
        assert box.call("count").ok
    assert result.kind == "unsupported" and "builtins.object" in result.error


def test_hostile_exceptions_and_oversized_results_are_described(tmp_path):
    source = """
    class Nasty(BaseException):
        def __str__(self):
            raise RuntimeError("no message for you")

    def nasty():
        raise Nasty()

    def interrupt():
        raise KeyboardInterrupt

    def long_list():
        return [0.5] * 300_000

    def ping():
        return 1
    """
    with sandbox(tmp_path, source) as box:
        nasty, interrupt, long_list = box.call("nasty"), box.call("interrupt"), box.call("long_list")
        assert box.call("ping").ok
    assert nasty.kind == "exception" and nasty.error.startswith("Nasty: <exception whose str() failed>")
    assert interrupt.kind == "exception" and interrupt.error == "KeyboardInterrupt"
    assert long_list.kind == "unsupported" and "header" in long_list.error


def test_bad_calls_are_the_graders_errors_and_raise(tmp_path):
    with sandbox(tmp_path, BENIGN) as box:
        with pytest.raises(ValueError, match="Class.method"):
            box.call("os.system('x')")
        with pytest.raises(ValueError, match="attrs"):
            box.call("ping", attrs={"a": 1})
        with pytest.raises(ValueError, match="timeout"):
            box.call("ping", timeout=0)
        with pytest.raises(TypeError, match="cannot be sent"):
            box.call("ping", (object(),))
        with pytest.raises(TypeError, match="tuple or list"):
            box.call("ping", np.ones(3))
    with pytest.raises(ValueError, match="closed"):
        box.call("ping")
    with pytest.raises(ValueError, match="positive"):
        Limits(call_timeout=-1)
    with pytest.raises(ValueError, match="worker_cpu_seconds"):
        Limits(cpu_seconds=10, worker_cpu_seconds=5)


@pytest.mark.parametrize(
    "source, match",
    [
        ("def f(:\n    pass\n", "SyntaxError"),
        ("raise ImportError('no torch here')\n", "ImportError: no torch here"),
        ("import sys\nsys.exit(3)\n", "SystemExit: 3"),
        ("import definitely_not_installed\n", "ModuleNotFoundError"),
    ],
)
def test_a_submission_that_fails_to_load_reports_why_on_every_call(tmp_path, source, match):
    with sandbox(tmp_path, source) as box:
        load = box.start()
        call = box.call("f")
    assert load.kind == "load" and match in load.error and load.traceback
    assert call.kind == "load" and match in call.error


def test_a_folder_submission_imports_its_siblings_and_its_entry_is_the_file_that_defines_the_target(tmp_path):
    folder = tmp_path / "student"
    (folder / "pkg").mkdir(parents=True)
    (folder / "pkg" / "__init__.py").write_text("VALUE = 41\n")
    (folder / "helpers.py").write_text("def inc(x):\n    return x + 1\n")
    (folder / "solution.py").write_text("from helpers import inc\nfrom pkg import VALUE\ndef f():\n    return inc(VALUE)\n")
    (folder / "driver.py").write_text("from solution import f\nraise SystemExit('the driver script is never imported')\n")
    with Sandbox(folder, limits=FAST) as box:  # no target named: nothing tells the files apart
        assert box.start().kind == "load" and "no file in the folder defines" in box.start().error
    with Sandbox(folder, limits=FAST, targets=("f",)) as box:  # the file that defines f, found by reading, not by running
        assert box.call("f").value == 42 and box.load_info.entry == "solution.py"
    with Sandbox(folder, entry="solution", limits=FAST) as box:
        assert box.call("f").value == 42
    with Sandbox(tmp_path / "nowhere", limits=FAST) as box:
        assert box.start().kind == "load" and "cannot read" in box.start().error


def test_symbolic_links_in_a_submission_are_never_followed(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("grader secret")
    secret.chmod(0o600)
    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "leak.txt").symlink_to(secret)
    (folder / "solution.py").write_text("def f():\n    import os\n    return sorted(os.listdir('.'))\n")
    with Sandbox(folder, limits=FAST) as box:
        result = box.call("f")
    assert result.ok and "leak.txt" not in result.value and "solution.py" in result.value
    link = tmp_path / "link.py"
    link.symlink_to(folder / "solution.py")
    with Sandbox(link, limits=FAST) as box:
        assert box.start().kind == "load" and "symbolic link" in box.start().error


# ============================================================================================
# Hostile submissions
# ============================================================================================


def test_an_infinite_loop_times_out_and_the_worker_is_replaced(tmp_path):
    source = BENIGN + "\ndef spin():\n    while True:\n        pass\n"
    with sandbox(tmp_path, source) as box:
        result = box.call("spin", timeout=0.5)
        assert result.kind == "timeout" and "killed" in result.error
        assert box.call("ping", (5,)).value == 5
        assert box.restarts == 1


def test_sleeping_forever_times_out(tmp_path):
    source = BENIGN + "\nimport time\ndef nap():\n    time.sleep(10**6)\n"
    with sandbox(tmp_path, source) as box:
        assert box.call("nap", timeout=0.5).kind == "timeout"
        assert box.call("ping").ok


def test_an_import_that_never_ends_times_out(tmp_path):
    with sandbox(tmp_path, "while True:\n    pass\n", limits=Limits(load_timeout=1.0)) as box:
        assert box.start().kind == "timeout"
        assert box.call("f").kind == "load"


def test_the_cpu_limit_stops_a_busy_loop(tmp_path):
    source = BENIGN + "\ndef spin():\n    while True:\n        pass\n"
    with sandbox(tmp_path, source, limits=Limits(cpu_seconds=1, call_timeout=30)) as box:
        result = box.call("spin")
        assert result.kind == "cpu" and result.elapsed < 20  # before the wall-clock deadline
        assert box.call("ping").ok


@pytest.mark.parametrize(
    "body",
    [
        "return bytearray(4 << 30)",
        "import numpy as np\n    return np.ones((1 << 30,))",
        "return [0] * (1 << 31)",
    ],
)
def test_a_memory_bomb_hits_the_address_space_limit(tmp_path, body):
    source = BENIGN + f"\ndef bomb():\n    {body}\n"
    with sandbox(tmp_path, source) as box:
        result = box.call("bomb")
        assert result.kind == "memory", result
        assert box.call("ping").ok


def test_filling_the_disk_hits_the_file_size_limit(tmp_path):
    source = BENIGN + "\ndef fill():\n    with open('big', 'wb') as f:\n        f.write(b'x' * (32 << 20))\n"
    with sandbox(tmp_path, source, limits=Limits(file_bytes=1 << 20)) as box:
        result = box.call("fill")
        assert result.kind == "exception" and "File too large" in result.error


@pytest.mark.skipif(not NO_FORK, reason="the worker may fork here: a fork bomb would hit the machine")
def test_a_fork_bomb_is_contained(tmp_path):
    source = BENIGN + "\nimport os\ndef bomb():\n    while True:\n        os.fork()\n"
    with sandbox(tmp_path, source) as box:
        result = box.call("bomb", timeout=2)
        assert result.kind in ("exception", "timeout", "crashed"), result
        assert box.call("ping").ok


DAEMON = """
import os, time

def escape():
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            while True:
                time.sleep(1)
        os._exit(0)
    return "forked"

def ping(x=1):
    return x
"""


@pytest.mark.skipif(not CONFINED_PROCESSES, reason="processes are not confined on this machine")
def test_a_daemon_that_double_forks_does_not_survive(tmp_path):
    with sandbox(tmp_path, DAEMON) as box:
        result = box.call("escape")
        assert result.kind in ("exception", "ok"), result
        if result.kind == "exception":  # RLIMIT_NPROC=0: no fork at all
            assert "Resource temporarily unavailable" in result.error


def test_an_escaped_daemon_is_found_by_its_marker_even_without_namespaces(tmp_path):
    # The weakest plan (as root: no namespaces, no uid drop, capabilities dropped): fork works,
    # and the daemon leaves the process group; close() must still find and kill it.
    with sandbox(tmp_path, DAEMON, _plan=Plan()) as box:
        result = box.call("escape")
        assert result.ok or "Resource temporarily unavailable" in result.error
        if result.ok:
            assert _alive_with(box.marker), "the daemon should be running until close()"
            assert box.isolation.level == "minimal"


def test_a_sandbox_that_cannot_be_built_says_so_and_is_not_the_students_fault(tmp_path):
    # A filesystem view asked for without a mount namespace would remount the host: refused.
    with sandbox(tmp_path, BENIGN, _plan=Plan(fs_view=True)) as box:
        start = box.start()
        assert start.kind == "setup" and "private mount namespace" in start.error
        assert box.call("ping").kind == "load"


@pytest.mark.parametrize(
    "where, code, kind",
    [
        ("import", "os._exit(0)", "crashed"),
        ("call", "os._exit(0)", "crashed"),
        ("call", "sys.exit(7)", "exception"),
        ("call", "os.close(1); os.close(2); os._exit(3)", "crashed"),
        ("call", "import ctypes; ctypes.string_at(0)", "crashed"),  # segfault
    ],
)
def test_exits_and_crashes_are_reported_and_the_next_call_works(tmp_path, where, code, kind):
    if where == "import":
        source = f"import os, sys\n{code}\n" + BENIGN
    else:
        source = "import os, sys\n" + BENIGN + f"\ndef die():\n    {code}\n"
    with sandbox(tmp_path, source) as box:
        if where == "import":
            assert box.start().kind == kind
            assert box.call("ping").kind == "load"
            return
        result = box.call("die")
        assert result.kind == kind, result
        assert box.call("ping", (3,)).value == 3


@pytest.mark.skipif(not CONFINED_SIGNALS, reason="signals are not confined here: the student could kill the test runner")
@pytest.mark.parametrize(
    "attack",
    [
        "os.kill(os.getppid(), signal.SIGKILL)",
        "os.killpg(os.getpgid(0), signal.SIGKILL)",
        "os.kill(-1, signal.SIGKILL)",
        "os.kill(1, signal.SIGKILL)",
    ],
)
def test_killing_the_parent_or_its_group_does_not_reach_the_grader(tmp_path, attack):
    source = "import os, signal\n" + BENIGN + f"\ndef attack():\n    {attack}\n    return 'still here'\n"
    with sandbox(tmp_path, source) as box:
        result = box.call("attack")
        assert result.kind in ("ok", "exception", "crashed"), result
        assert box.call("ping").ok
    os.kill(os.getpid(), 0)  # the grader (this process) is alive


def test_monkeypatching_numpy_stays_in_the_worker(tmp_path):
    source = """
    import numpy as np
    np.sum = lambda *args, **kwargs: 42
    np.linalg.norm = None
    def total(x):
        return np.sum(x)
    """
    with sandbox(tmp_path, source) as box:
        result = box.call("total", (np.ones(3),))
    assert result.value == 42
    assert np.sum(np.ones(3)) == 3.0 and np.linalg.norm(np.ones(4)) == 2.0


def test_lying_arrays_arrive_as_plain_arrays_of_their_true_contents(tmp_path):
    source = """
    import numpy as np

    class Liar(np.ndarray):
        shape = property(lambda self: (10**9, 10**9))
        dtype = property(lambda self: np.dtype(object))
        def __len__(self):
            return 10**12
        def __array__(self, *args, **kwargs):
            return np.zeros(10**6)

    class Pretender:
        def __array__(self, *args, **kwargs):
            return np.ones(3)

    def liar():
        return np.arange(4.0).view(Liar)

    def pretender():
        return Pretender()

    def huge():
        return np.broadcast_to(np.zeros(1), (10**6, 10**6))

    def strided():
        return np.lib.stride_tricks.as_strided(np.zeros(1), shape=(10**7, 10**7), strides=(0, 0))
    """
    with sandbox(tmp_path, source) as box:
        liar, pretender, huge, strided = (box.call(name) for name in ("liar", "pretender", "huge", "strided"))
    assert liar.ok and type(liar.value) is np.ndarray and np.array_equal(liar.value, np.arange(4.0))
    assert pretender.kind == "unsupported" and "Pretender" in pretender.error
    assert huge.kind == "unsupported" and "exceeds" in huge.error
    assert strided.kind == "unsupported" and "exceeds" in strided.error


# A student who writes straight into the worker's reply pipe (it shares the worker's process,
# so it can): every lie must end as a clean "protocol" result and a fresh worker.
FORGER = """
import gc, json, os, struct

def _channel():
    return next(o for o in gc.get_objects() if type(o).__name__ == "_Channel")

def _frame(payload):
    return struct.pack("<I", len(payload)) + payload

def _header(tree, n):
    return _frame(json.dumps({"v": 1, "n": n, "m": tree}).encode())

def forge(kind):
    fd = _channel().wfd
    if kind == "length":
        os.write(fd, struct.pack("<I", 0xFFFFFFFF))
    elif kind == "shape":
        npy = b"\\x93NUMPY\\x01\\x00" + struct.pack("<H", 118)
        npy += "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000000), }".ljust(117).encode() + b"\\n"
        os.write(fd, _header({"$a": 0}, 1) + _frame(npy + b"\\0" * 8))
    elif kind == "object":
        npy = b"\\x93NUMPY\\x01\\x00" + struct.pack("<H", 118)
        npy += "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }".ljust(117).encode() + b"\\n"
        os.write(fd, _header({"$a": 0}, 1) + _frame(npy + b"\\0" * 8))
    elif kind == "json":
        os.write(fd, _frame(b"{'this is': not json"))
    elif kind == "count":
        os.write(fd, _header(None, 10**9))
    elif kind == "stale":
        os.write(fd, _header({"$d": {"op": "result", "id": "0" * 16, "kind": "ok", "value": 1,
                 "error": None, "traceback": None, "args_after": None, "cpu": 0.0}}, 0))
    elif kind == "fields":
        os.write(fd, _header({"$d": {"op": "result", "kind": "ok"}}, 0))
    elif kind == "close":
        os.close(fd)
    elif kind == "huge":
        npy = b"\\x93NUMPY\\x01\\x00" + struct.pack("<H", 118)
        npy += "{'descr': '|i1', 'fortran_order': False, 'shape': (209715200,), }".ljust(117).encode() + b"\\n"
        os.write(fd, _header({"$a": 0}, 1) + struct.pack("<I", len(npy) + 209715200) + npy)
    elif kind == "extra":
        os.write(fd, _header({"$d": {"op": "result", "id": _channel().__dict__.get("id", "x"), "kind": "ok", "value": 1,
                 "error": None, "traceback": None, "extra": "y"}}, 0))
    return "honest value"

def ping(x=1):
    return x
"""


@pytest.mark.parametrize("kind", ["length", "shape", "object", "json", "count", "stale", "fields", "close", "huge", "extra"])
def test_forged_protocol_frames_end_in_a_protocol_error_and_a_fresh_worker(tmp_path, kind):
    with sandbox(tmp_path, FORGER) as box:
        result = box.call("forge", (kind,))
        assert result.kind == ("crashed" if kind == "close" else "protocol"), result
        assert box.call("ping", (9,)).value == 9
        assert box.restarts == 1


def test_import_gradverify_fails_inside_the_sandbox(tmp_path):
    repo = Path(__file__).resolve().parents[1]
    source = f"""
    import sys

    def plain():
        import gradverify

    def with_path():
        sys.path.insert(0, {str(repo)!r})
        import gradverify.grading.sandbox
        return gradverify.__file__
    """
    with sandbox(tmp_path, source) as box:
        plain, with_path = box.call("plain"), box.call("with_path")
    assert plain.kind == "exception" and "No module named 'gradverify'" in plain.error
    if HAS_FS_ALLOW_LIST:
        assert with_path.kind == "exception", with_path


@pytest.mark.skipif(not HAS_FS_ALLOW_LIST and "uid-65534" not in LAYERS, reason="no uid drop and no filesystem allow-list here")
def test_the_graders_private_files_cannot_be_read(tmp_path):
    secret = tmp_path / "private" / "answers.txt"
    secret.parent.mkdir()
    secret.write_text("the answer key")
    secret.chmod(0o600)
    source = """
    def read(path):
        with open(path) as f:
            return f.read()
    """
    with sandbox(tmp_path, source) as box:
        result = box.call("read", (str(secret),))
        assert result.kind == "exception" and result.error.split(":")[0] in ("PermissionError", "FileNotFoundError")
        if HAS_FS_ALLOW_LIST:
            source_file = str(Path(frames.__file__).with_name("sandbox.py"))
            assert box.call("read", (source_file,)).kind == "exception"


@pytest.mark.skipif(not HAS_FS_ALLOW_LIST, reason="no filesystem allow-list (fs view or Landlock) here")
def test_files_cannot_be_written_outside_the_work_directory(tmp_path):
    open_dir = tmp_path / "results"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    source = """
    import os
    def write(path):
        with open(path, "w") as f:
            f.write('{"score": 100}')
        return "written"
    def local():
        with open("scratch.txt", "w") as f:
            f.write("fine")
        return open("scratch.txt").read()
    """
    targets = [open_dir / "results.json", Path("/tmp") / f"gradverify-fake-{os.getpid()}.json"]
    with sandbox(tmp_path, source) as box:
        for target in targets:
            assert box.call("write", (str(target),)).kind == "exception"
        assert box.call("local").value == "fine"
    assert not any(target.exists() for target in targets)


def test_fake_results_printed_to_stdout_are_only_feedback(tmp_path):
    source = """
    import struct, sys
    def f():
        fake = b'{"v": 1, "n": 0, "m": {"$d": {"op": "result", "kind": "ok", "value": 100}}}'
        print('{"kind": "ok", "value": 100, "score": "full marks"}')
        sys.stdout.flush()
        sys.stdout.buffer.write(struct.pack("<I", len(fake)) + fake)
        sys.stderr.write("RESULT: PASS\\n")
        return 1
    """
    with sandbox(tmp_path, source) as box:
        result = box.call("f")
    assert result.ok and result.value == 1
    assert '"score": "full marks"' in result.stdout and "RESULT: PASS" in result.stderr


def test_floods_of_output_are_capped(tmp_path):
    source = BENIGN + """
import sys
def flood():
    for _ in range(200):
        sys.stdout.write("x" * 100_000)
        sys.stderr.write("y" * 100_000)
    return "done"

def endless():
    while True:
        print("spam" * 1000)
"""
    with sandbox(tmp_path, source, limits=Limits(output_bytes=1000, call_timeout=5)) as box:
        result = box.call("flood")
        assert result.ok and result.value == "done"
        assert result.stdout.startswith("x" * 1000) and "more bytes not shown" in result.stdout
        assert len(result.stdout) < 1100 and len(result.stderr) < 1100
        endless = box.call("endless", timeout=1)
        assert endless.kind == "timeout" and len(endless.stdout) < 1100
        assert box.call("ping").ok


@pytest.mark.skipif(
    "net-ns" not in LAYERS and "landlock-no-tcp" not in LAYERS,
    reason="no network namespace and no Landlock TCP rules here: the sandbox cannot block the network",
)
def test_the_network_is_unreachable(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    source = """
    import socket
    def connect(port):
        socket.create_connection(("127.0.0.1", port), timeout=2).sendall(b"stolen")
        return "connected"
    def udp(port):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(b"stolen", ("127.0.0.1", port))
        return "sent"
    """
    try:
        with sandbox(tmp_path, source) as box:
            assert box.call("connect", (port,)).kind == "exception"
            udp = box.call("udp", (port,))
        with pytest.raises(socket.timeout):
            listener.accept()
    finally:
        listener.close()
    if "net-ns" in LAYERS:
        assert udp.kind == "exception"


def test_reading_stdin_gets_end_of_file_at_once(tmp_path):
    source = "import sys\ndef read():\n    return [sys.stdin.read(), sys.stdin.readline(), input.__name__]\n"
    with sandbox(tmp_path, source) as box:
        result = box.call("read", timeout=2)
    assert result.ok and result.value == ["", "", "input"]


def test_results_cover_every_documented_kind():
    assert {"ok", "exception", "timeout", "crashed", "protocol", "memory", "cpu", "load"} <= set(KINDS)
    assert CallResult("ok").ok and not CallResult("timeout").ok


# ============================================================================================
# Nothing shared between sandboxes
# ============================================================================================

CHANNELS = r'''
import ctypes, os, socket

libc = ctypes.CDLL(None, use_errno=True)
KEYCTL = {"x86_64": 250, "aarch64": 219}.get(os.uname().machine)
ADD_KEY = {"x86_64": 248, "aarch64": 217}.get(os.uname().machine)
_keep = []


def plant(secret):
    """Leave ``secret`` wherever another process could find it; say where it worked."""
    done = {}
    data = secret.encode()
    if ADD_KEY:
        for ring in (-4, -3, -5):  # user, session, user-session keyrings
            done[f"keyring {ring}"] = libc.syscall(ADD_KEY, b"user", b"gv-secret", data, len(data), ring) > 0
    for path in ("/dev/shm/gv-secret", "/tmp/gv-secret", "/var/tmp/gv-secret", "secret.txt"):
        try:
            with open(path, "w") as fh:
                fh.write(secret)
            done[path] = True
        except OSError:
            done[path] = False
    try:
        s = socket.socket(socket.AF_UNIX)
        s.bind("\0gv-secret")
        s.listen(1)
        _keep.append(s)
        done["abstract socket"] = True
    except OSError:
        done["abstract socket"] = False
    return [done, os.path.abspath("secret.txt"), os.getpid(), os.getuid()]


def find(work_file, other_pid):
    """Everything of another sandbox this one can reach."""
    found = []
    buf = ctypes.create_string_buffer(4096)
    if KEYCTL:
        for ring in (-4, -3, -5):
            key = libc.syscall(KEYCTL, 10, ring, b"user", b"gv-secret", 0)  # KEYCTL_SEARCH
            if key > 0 and libc.syscall(KEYCTL, 11, key, buf, len(buf)) > 0:  # KEYCTL_READ
                found.append(f"keyring {ring}: {buf.value!r}")
    for path in ("/dev/shm/gv-secret", "/tmp/gv-secret", "/var/tmp/gv-secret", work_file):
        try:
            with open(path) as fh:
                found.append(f"{path}: {fh.read()!r}")
        except OSError:
            pass
    try:
        socket.socket(socket.AF_UNIX).connect("\0gv-secret")
        found.append("abstract socket")
    except OSError:
        pass
    if other_pid != os.getpid():
        try:
            os.kill(other_pid, 0)
            found.append(f"signal to pid {other_pid}")
        except OSError:
            pass
    return found
'''


@pytest.mark.skipif(not ({"seccomp", "net-ns", "ipc-ns"} <= LAYERS and (HAS_FS_ALLOW_LIST or "own-uid" in LAYERS)),
                    reason="this machine cannot keep sandboxes apart (no seccomp, namespaces or own uid): see the isolation notes")
def test_two_sandboxes_cannot_reach_each_other(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with sandbox(tmp_path / "a", CHANNELS) as first, sandbox(tmp_path / "b", CHANNELS) as second:
        planted = first.call("plant", ("the answer key",))
        assert planted.ok, planted
        done, work_file, _, uid = planted.value
        assert done["secret.txt"]  # its own work folder is writable...
        assert not done["keyring -4"] and not done["/dev/shm/gv-secret"] and not done["/tmp/gv-secret"]  # ...nothing else
        host_pid = first._state.worker.worker_pid()  # the first worker as the host sees it
        found = second.call("find", (work_file, host_pid))
        assert found.ok and found.value == [], found.value  # alive at the same time, and still nothing to find
        other = second.call("plant", ("x",))
        assert other.value[3] != uid, "two sandboxes ran under the same uid"
    # and nothing of theirs is left for a later one
    assert not Path("/tmp/gv-secret").exists() and not Path("/dev/shm/gv-secret").exists()


@pytest.mark.skipif("seccomp" not in LAYERS, reason="no seccomp filter on this machine (see the isolation notes)")
@pytest.mark.parametrize("call, args", [
    ("keyctl", (0, -4, 1)), ("add_key", (0, 0, 0, 0, -4)), ("request_key", (0, 0, 0, 0)), ("ptrace", (0, 1, 0, 0)),
    ("bpf", (0, 0, 0)), ("userfaultfd", (0,)), ("perf_event_open", (0, 0, -1, -1, 0)), ("unshare", (0x10000000,)),
    ("setns", (0, 0)), ("mount", (0, 0, 0, 0, 0)), ("io_uring_setup", (1, 0)), ("shmget", (0, 4096, 0o1600)),
    ("flock", (0, 2)), ("fcntl", (0, 6, 0)), ("fcntl", (0, 37, 0)), ("fcntl", (0, 1026, 0)), ("inotify_init1", (0,)),
    ("futex", (0, 0, 0, 0)), ("futex_waitv", (0, 0, 0, 0, 0)),
])
def test_the_seccomp_filter_refuses_the_calls_that_reach_other_processes(tmp_path, call, args):
    numbers = seccomp._NUMBERS[os.uname().machine]
    source = f"""
    import ctypes
    def go():
        libc = ctypes.CDLL(None, use_errno=True)
        return [libc.syscall({numbers[call]}, *{list(args)!r}), ctypes.get_errno()]
    """
    with sandbox(tmp_path, source) as box:
        result = box.call("go")
    assert result.ok and result.value == [-1, 1], (call, result)  # -1, EPERM


FLOCK_CHANNEL = {
    "holder.py": """
import fcntl, os, time
import numpy as np

def hold(seconds):
    fd = os.open(np.__file__, os.O_RDONLY)  # a file every sandbox sees, read-only
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        time.sleep(seconds)
        return "held"
    except OSError as exc:
        return str(exc)
    finally:
        os.close(fd)
""",
    "prober.py": """
import fcntl, os
import numpy as np

def probe():
    fd = os.open(np.__file__, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return "free"
    except BlockingIOError:
        return "busy"  # another sandbox holds it: one bit crossed
    except OSError as exc:
        return str(exc)
    finally:
        os.close(fd)
""",
}


@pytest.mark.skipif("seccomp" not in LAYERS, reason="no seccomp filter on this machine (see the isolation notes)")
def test_a_lock_on_a_file_both_sandboxes_see_carries_nothing_between_them(tmp_path):
    """Two sandboxes running at once (``--jobs 2``) both see numpy, read-only: ``flock`` on it in one was seen
    by the other (``EWOULDBLOCK``), a channel for answers between two colluding submissions of one batch."""
    import threading

    for name, text in FLOCK_CHANNEL.items():
        (tmp_path / name).write_text(text)
    with Sandbox(tmp_path / "holder.py", limits=FAST) as holder, Sandbox(tmp_path / "prober.py", limits=FAST) as prober:
        assert holder.start().ok and prober.start().ok
        held = []
        thread = threading.Thread(target=lambda: held.append(holder.call("hold", (1.5,))))
        thread.start()
        time.sleep(0.7)
        during = prober.call("probe")
        thread.join()
    assert held[0].ok and "not permitted" in held[0].value, held[0]
    assert during.ok and during.value != "busy" and "not permitted" in during.value, during


@pytest.mark.skipif(not Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h").exists() or os.uname().machine != "x86_64",
                    reason="the kernel's x86_64 headers are not installed")
def test_the_seccomp_table_matches_the_kernel_headers():
    text = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h").read_text()
    header = {m.group(1): int(m.group(2)) for m in re.finditer(r"#define __NR_(\w+)\s+(\d+)", text)}
    table = seccomp._NUMBERS["x86_64"]
    known = {name: n for name, n in table.items() if name in header}
    assert {name: header[name] for name in known} == known
    newer = {name: n for name, n in table.items() if name not in header}  # calls newer than these headers (futex2)
    assert all(n > max(header.values()) for n in newer.values()), newer


def test_the_seccomp_program_is_well_formed():
    program = seccomp.program("x86_64")
    assert len(program) % 8 == 0 and len(program) // 8 < 4096
    assert set(seccomp.DENIED) >= {"keyctl", "add_key", "request_key", "ptrace", "bpf", "userfaultfd", "perf_event_open",
                                   "mount", "unshare", "setns", "io_uring_setup"}
    with pytest.raises(ValueError, match="no seccomp"):
        seccomp.program("sparc")


@pytest.mark.skipif("tmpfs-work" not in LAYERS, reason="no tmpfs work folder on this machine (see the isolation notes)")
def test_the_work_folder_is_a_capped_tmpfs_that_vanishes_with_the_worker(tmp_path):
    source = """
    import os
    def fill():
        written = 0
        try:
            for i in range(64):
                with open(f"big-{i}", "wb") as fh:
                    fh.write(b"x" * (4 << 20))
                written += 4 << 20
        except OSError as exc:
            return [written, exc.errno]
        return [written, 0]
    def folders():
        for i in range(100000):
            try:
                os.mkdir(f"d{i}")
            except OSError as exc:
                return [i, exc.errno]
        return [100000, 0]
    def listing():
        return sorted(os.listdir("."))
    """
    limits = Limits(work_bytes=32 << 20, work_inodes=500, file_bytes=8 << 20, call_timeout=5)
    with sandbox(tmp_path, source, limits=limits) as box:
        written, err = box.call("fill").value
        assert written <= 32 << 20 and err == 28  # ENOSPC
        made, err = box.call("folders").value
        assert made < 500 and err == 28
        box.restart()
        assert set(box.call("listing").value) <= {"submission.py", "__pycache__"}  # a fresh tmpfs: nothing kept
        assert not list((Path(box._state.root.path) / "work").iterdir())  # never on the host's disk


def test_the_snapshot_is_taken_once_and_is_what_the_fingerprint_describes(tmp_path):
    path = _write(tmp_path, "def f():\n    return 1\n")
    with Sandbox(path, limits=FAST) as box:
        assert box.call("f").value == 1
        before = box.fingerprint
        path.write_text("def f():\n    return 2\n")  # swapped while it is being graded
        box.restart()
        assert box.call("f").value == 1 and box.fingerprint == before  # the copy that is graded
    from gradverify.grading.files import fingerprint

    assert fingerprint(path) != before and len(before) == 64


# ============================================================================================
# The copy: what is copied, what is counted, what is refused
# ============================================================================================


def test_the_copy_counts_folders_depth_and_bytes_and_never_follows_a_link(tmp_path):
    from gradverify.grading.files import SubmissionError, fingerprint, snapshot

    small = Limits(submission_entries=20, submission_depth=3, submission_bytes=1000)
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "solution.py").write_text("x = 1\n")
    (folder / "link.py").symlink_to(tmp_path / "elsewhere.py")
    (tmp_path / "elsewhere.py").write_text("secret = 1\n")
    copy = tmp_path / "copy"
    copy.mkdir()
    snap = snapshot(folder, copy, limits=small)
    assert snap.entry == "solution.py" and sorted(p.name for p in copy.iterdir()) == ["solution.py"]
    assert any("symbolic link" in s for s in snap.skipped) and fingerprint(folder, limits=small) == snap.digest
    for i in range(25):
        (folder / f"empty{i}").mkdir()  # empty folders count too
    with pytest.raises(SubmissionError, match="more than 20 files and folders"):
        snapshot(folder, None, limits=small)
    for i in range(25):
        (folder / f"empty{i}").rmdir()
    (folder / "a" / "b" / "c" / "d").mkdir(parents=True)
    with pytest.raises(SubmissionError, match="deeper than 3"):
        snapshot(folder, None, limits=small)
    remove_tree(folder / "a")
    with open(folder / "data.bin", "wb") as fh:
        fh.truncate(1 << 40)  # a terabyte, sparse: only the cap is ever read
    with pytest.raises(SubmissionError, match="larger than"):
        snapshot(folder, None, limits=small)


def test_a_hard_linked_file_refuses_the_submission_as_not_the_students_doing(tmp_path):
    from gradverify.grading.files import SubmissionError, snapshot

    victim = _write(tmp_path, "def f():\n    return 1\n", "victim.py")
    (tmp_path / "thief").mkdir()
    os.link(victim, tmp_path / "thief" / "solution.py")
    for path in (victim, tmp_path / "thief"):
        with pytest.raises(SubmissionError, match="hard links") as err:
            snapshot(path, None)
        assert err.value.refused
    with Sandbox(victim, limits=FAST) as box:
        start = box.start()
    assert start.kind == "setup" and "hard links" in start.error  # the grader's refusal, not a load error


def test_removing_a_tree_of_any_depth_needs_no_recursion(tmp_path):
    top = tmp_path / "deep"
    top.mkdir()
    fd = os.open(top, os.O_RDONLY)
    for _ in range(3000):  # deeper than PATH_MAX allows as a path, and than Python's recursion limit
        os.mkdir("d", dir_fd=fd)
        child = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.mkdir("locked", 0o000, dir_fd=fd)
    os.close(fd)
    (top / "link").symlink_to(tmp_path)  # never followed
    remove_tree(top)
    assert not top.exists() and tmp_path.exists()
