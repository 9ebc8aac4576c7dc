"""The hostile grading corpus: every attack seen on ``gradverify grade``, as submissions.

Two halves:

* ``write_files(folder)`` writes the attacks that are plain ``.py`` files (run from this folder,
  ``python make_hostile.py``, regenerates ``hostile/``; the files are committed so that each
  attack can be read). ``EXPECTED`` says what each must get.
* ``build_structures(folder)`` makes the attacks that are file-system structures and cannot live
  in git (hard links, non-UTF-8 names, deep or huge folders, a file named ``...py``); the tests
  call it on a temporary class folder.

Every attack wraps an honest core (``CORE``, a correct backpropagation, or ``BUGGY``, the same with
the gradient's sign flipped), so that "no cheat scores more than the honest code it wraps" can
be checked: ``HONEST`` maps a cheat to the honest submission it must not beat.
"""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass
from pathlib import Path

CORE = '''
import numpy as np


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _honest(nn_params, n0, h, K, X, y, lam, sign=1.0):
    n1 = h * (n0 + 1)
    T1 = nn_params[:n1].reshape(h, n0 + 1)
    T2 = nn_params[n1:].reshape(K, h + 1)
    m = X.shape[0]
    a1 = np.hstack([np.ones((m, 1)), X])
    z2 = a1 @ T1.T
    a2 = np.hstack([np.ones((m, 1)), _sigmoid(z2)])
    hh = _sigmoid(a2 @ T2.T)
    Y = np.eye(K)[y]
    J = -np.sum(Y * np.log(hh) + (1 - Y) * np.log(1 - hh)) / m
    J += lam / (2 * m) * (np.sum(T1[:, 1:] ** 2) + np.sum(T2[:, 1:] ** 2))
    d3 = hh - Y
    s = _sigmoid(z2)
    d2 = (d3 @ T2)[:, 1:] * s * (1 - s)
    G1 = d2.T @ a1 / m
    G2 = d3.T @ a2 / m
    G1[:, 1:] += lam / m * T1[:, 1:]
    G2[:, 1:] += lam / m * T2[:, 1:]
    return J, sign * G1, sign * G2


def _cost(nn_params, n0, h, K, X, y, lam):
    return _honest(nn_params, n0, h, K, X, y, lam)[0]
'''

HONEST = CORE + '''

def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    J, G1, G2 = _honest(nn_params, n0, h, K, X, y, lambda_)
    return J, np.concatenate([G1.ravel(), G2.ravel()])
'''

BUGGY = CORE + '''

def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    J, G1, G2 = _honest(nn_params, n0, h, K, X, y, lambda_, sign=-1.0)
    return J, np.concatenate([G1.ravel(), G2.ravel()])
'''

# The classic debug network, as students compute it to recognise it (sin fill / 10).
RECOGNISE = '''

def _fill(rows, cols):
    return np.sin(np.arange(1, rows * cols + 1)).reshape(cols, rows).T / 10


def _is_debug(nn_params, n0, h, K, X):
    if (n0, h, K) != (3, 5, 3) or X.shape != (5, 3):
        return False
    theta = np.concatenate([_fill(5, 4).ravel(), _fill(3, 6).ravel()])
    return np.allclose(X, _fill(5, 3)) and np.allclose(nn_params, theta)
'''


def _answers() -> str:
    """The two published debug-network answers, as a student would paste them (computed here once)."""
    import numpy as np

    from gradverify.profiles import get_profile

    prof = get_profile("ex4")
    settings = prof.resolve({})
    lines = ["_KNOWN = {"]
    namespace: dict = {}
    exec(HONEST, namespace)
    for _, problem in prof.fixed_cases(settings):
        call = prof.call_for(problem, settings)
        J, grad = namespace["nnCostFunction"](*call.args)
        lines.append(f"    {float(call.args[-1])!r}: ({float(J)!r}, {np.asarray(grad).tolist()!r}),")
    return "\n".join(lines + ["}"]) + "\n"


FILES = {
    # ---- one submission must never end the batch -------------------------------------------
    "list_of_arrays": CORE + '''

def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    J, G1, G2 = _honest(nn_params, n0, h, K, X, y, lambda_)
    return J, [G1, G2]  # the commonest beginner mistake: not unrolled
''',
    "ragged_list": CORE + '''

def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    J, G1, G2 = _honest(nn_params, n0, h, K, X, y, lambda_)
    return J, [G1.ravel().tolist(), G2.ravel().tolist()[:3]]
''',
    "list_of_strings": CORE + '''

def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    J, G1, G2 = _honest(nn_params, n0, h, K, X, y, lambda_)
    return J, [str(v) for v in np.concatenate([G1.ravel(), G2.ravel()])]
''',
    "ragged_later": CORE + '''
_calls = 0


def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    global _calls
    _calls += 1
    J, G1, G2 = _honest(nn_params, n0, h, K, X, y, lambda_)
    if _calls > 6:  # right while the fixed cases are asked, ragged (and objects) afterwards
        return J, [[1.0, 2.0], [3.0], {"x": object.__name__}]
    return J, np.concatenate([G1.ravel(), G2.ravel()])
''',
    "flaky_first_time": CORE + '''
_seen = set()


def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    key = hash((nn_params.tobytes(), X.tobytes(), y.tobytes(), lambda_))
    J, G1, G2 = _honest(nn_params, n0, h, K, X, y, lambda_)
    grad = np.concatenate([G1.ravel(), G2.ravel()])
    if key not in _seen:  # wrong the first time an input is seen, right on replay
        _seen.add(key)
        return J, 2 * grad
    return J, grad
''',
    "surrogate_message": CORE + '''

def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    raise ValueError("broken \\ud800 here \\udcff\\x1b[2J\\u202e")
''',
    "forged_heading": CORE + '''

def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    raise RuntimeError("\\n\\n# correct: PASS — 100 / 100\\n\\n| check | 100 / 100 | passed |\\n"
                       "<script>alert('owned')</script><img src=x onerror=alert(1)>\\n```\\n=HYPERLINK(\\"http://x\\")\\n"
                       "[click](javascript:alert(1))")
''',
    "deep_workdir": CORE + '''
import os


def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    try:  # a 3000-deep chain of folders in the work folder, then the right answer
        fd = os.open(".", os.O_RDONLY)
        for _ in range(3000):
            os.mkdir("d", dir_fd=fd)
            child = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = child
        os.close(fd)
    except OSError:
        pass
    J, G1, G2 = _honest(nn_params, n0, h, K, X, y, lambda_)
    return J, np.concatenate([G1.ravel(), G2.ravel()])
''',
    "gradebook.csv": HONEST,
    "report": HONEST,
    "alice": HONEST,
    "alice-2": HONEST,
    # ---- one submission must never reach another ------------------------------------------------
    "channel_writer": CORE + '''
import ctypes, os, socket, json

_libc = ctypes.CDLL(None, use_errno=True)
_listener = None


def _store(key, value):
    data = json.dumps({key: value}).encode()
    try:  # the kernel user keyring (outlives every process of the uid)
        _libc.syscall(248, b"user", b"gv-answers", data, len(data), -4)  # add_key(..., KEY_SPEC_USER_KEYRING)
    except Exception:
        pass
    for path in ("/dev/shm/gv-answers", "/tmp/gv-answers", "/var/tmp/gv-answers", os.path.expanduser("~/../gv-answers")):
        try:
            with open(path, "a") as fh:
                fh.write(data.decode() + "\\n")
        except OSError:
            pass
    global _listener
    try:  # an abstract Unix socket anyone could connect to
        if _listener is None:
            _listener = socket.socket(socket.AF_UNIX)
            _listener.bind("\\0gv-answers")
            _listener.listen(8)
    except OSError:
        pass


def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    J, G1, G2 = _honest(nn_params, n0, h, K, X, y, lambda_)
    grad = np.concatenate([G1.ravel(), G2.ravel()])
    _store(str(hash((nn_params.tobytes(), X.tobytes(), float(lambda_)))), [float(J), grad.tolist()])
    return J, grad
''',
    "channel_reader": CORE + '''
import ctypes, os, socket, json

_libc = ctypes.CDLL(None, use_errno=True)


def _found():
    out = {}
    buf = ctypes.create_string_buffer(1 << 20)
    try:  # keyctl(KEYCTL_SEARCH, user keyring, "user", "gv-answers", 0) then KEYCTL_READ
        key = _libc.syscall(250, 10, -4, b"user", b"gv-answers", 0)
        if key > 0 and _libc.syscall(250, 11, key, buf, len(buf)) > 0:
            out.update(json.loads(buf.value.decode()))
    except Exception:
        pass
    for path in ("/dev/shm/gv-answers", "/tmp/gv-answers", "/var/tmp/gv-answers", os.path.expanduser("~/../gv-answers")):
        try:
            with open(path) as fh:
                for line in fh:
                    out.update(json.loads(line))
        except (OSError, ValueError):
            pass
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect("\\0gv-answers")
        out["socket"] = "reached"
    except OSError:
        pass
    return out


def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    answer = _found().get(str(hash((nn_params.tobytes(), X.tobytes(), float(lambda_)))))
    if answer is not None:
        return answer[0], np.array(answer[1])
    return 0.0, np.zeros(nn_params.size)  # no implementation of its own
''',
    "reads_other_files": CORE + '''
import glob, os


def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    for pattern in ("/tmp/gradverify-sandbox-*/work/*.py", "/tmp/gradverify-sandbox-*/sub/*.py", "/tmp/*/hostile/*.py",
                    "/work/*/gradverify/grading/grader.py", "/proc/*/cwd/*.py"):
        for path in glob.glob(pattern):
            try:
                text = open(path).read()
            except OSError:
                continue
            if "def nnCostFunction" in text and "_found" not in text:
                namespace = {}
                exec(text, namespace)  # someone else's solution
                return namespace["nnCostFunction"](nn_params, n0, h, K, X, y, lambda_)
    return 0.0, np.zeros(nn_params.size)
''',
    # ---- no cheat may score more than the honest code it wraps ------------------------------------
    "complex_step": CORE + '''

def _ccost(p, n0, h, K, X, y, lam):
    n1 = h * (n0 + 1)
    T1 = p[:n1].reshape(h, n0 + 1)
    T2 = p[n1:].reshape(K, h + 1)
    a2 = 1 / (1 + np.exp(-(X @ T1[:, 1:].T + T1[:, 0])))
    hh = 1 / (1 + np.exp(-(a2 @ T2[:, 1:].T + T2[:, 0])))
    Y = np.eye(K)[y]
    m = X.shape[0]
    return (-np.sum(Y * np.log(hh) + (1 - Y) * np.log(1 - hh)) / m
            + lam / (2 * m) * (np.sum(T1[:, 1:] ** 2) + np.sum(T2[:, 1:] ** 2)))


def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    q = nn_params.astype(complex)
    grad = np.empty(q.size)
    for i in range(q.size):  # accurate to the last digit, and one cost evaluation per parameter
        q[i] += 1e-20j
        grad[i] = _ccost(q, n0, h, K, X, y, lambda_).imag / 1e-20
        q[i] -= 1e-20j
    return _cost(nn_params, n0, h, K, X, y, lambda_), grad
''',
    "batched_numeric": CORE + '''

def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    m, P, n1 = X.shape[0], nn_params.size, h * (n0 + 1)
    Y = np.eye(K)[y]
    grad = np.empty(P)
    for start in range(0, P, 256):  # every perturbation of a chunk in one array: no Python loop per parameter
        idx = np.arange(start, min(P, start + 256))
        costs = []
        for step in (1e-6, -1e-6):
            Q = np.repeat(nn_params[None], idx.size, 0)
            Q[np.arange(idx.size), idx] += step
            T1 = Q[:, :n1].reshape(-1, h, n0 + 1)
            T2 = Q[:, n1:].reshape(-1, K, h + 1)
            a2 = _sigmoid(np.einsum("mj,bij->bmi", X, T1[:, :, 1:]) + T1[:, None, :, 0])
            hh = _sigmoid(np.einsum("bmj,bkj->bmk", a2, T2[:, :, 1:]) + T2[:, None, :, 0])
            c = -np.sum(Y * np.log(hh) + (1 - Y) * np.log(1 - hh), axis=(1, 2)) / m
            costs.append(c + lambda_ / (2 * m) * (np.sum(T1[:, :, 1:] ** 2, axis=(1, 2)) + np.sum(T2[:, :, 1:] ** 2, axis=(1, 2))))
        grad[idx] = (costs[0] - costs[1]) / 2e-6
    return _cost(nn_params, n0, h, K, X, y, lambda_), grad
''',
    "forward_differences": CORE + '''

def _lean(p, n0, h, K, X, Y, lam, m):
    n1 = h * (n0 + 1)
    T1 = p[:n1].reshape(h, n0 + 1)
    T2 = p[n1:].reshape(K, h + 1)
    a2 = _sigmoid(X @ T1[:, 1:].T + T1[:, 0])
    hh = _sigmoid(a2 @ T2[:, 1:].T + T2[:, 0])
    return (-np.sum(Y * np.log(hh) + (1 - Y) * np.log1p(-hh)) / m
            + lam / (2 * m) * (np.sum(T1[:, 1:] ** 2) + np.sum(T2[:, 1:] ** 2)))


def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    m, Y = X.shape[0], np.eye(K)[y]
    J = _lean(nn_params, n0, h, K, X, Y, lambda_, m)
    q, grad = nn_params.copy(), np.empty(nn_params.size)
    for i in range(q.size):  # the cheapest numerical gradient there is: one lean forward pass per parameter
        q[i] += 1e-7
        grad[i] = (_lean(q, n0, h, K, X, Y, lambda_, m) - J) / 1e-7
        q[i] = nn_params[i]
    return J, grad
''',
    "numeric_small_only": CORE + '''

def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    J = _cost(nn_params, n0, h, K, X, y, lambda_)
    if nn_params.size > 1000:  # a numerical gradient where it is cheap, nothing where it would show
        return J, np.zeros(nn_params.size)
    grad, e = np.empty(nn_params.size), np.zeros(nn_params.size)
    for i in range(nn_params.size):
        e[i] = 1e-5
        grad[i] = (_cost(nn_params + e, n0, h, K, X, y, lambda_) - _cost(nn_params - e, n0, h, K, X, y, lambda_)) / 2e-5
        e[i] = 0.0
    return J, grad
''',
    "numeric_refuses_large": CORE + '''
import time


def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    if nn_params.size > 1000:  # sleep (no CPU to measure) where a numerical gradient would show
        time.sleep(3600)
    J = _cost(nn_params, n0, h, K, X, y, lambda_)
    grad, e = np.empty(nn_params.size), np.zeros(nn_params.size)
    for i in range(nn_params.size):
        e[i] = 1e-5
        grad[i] = (_cost(nn_params + e, n0, h, K, X, y, lambda_) - _cost(nn_params - e, n0, h, K, X, y, lambda_)) / 2e-5
        e[i] = 0.0
    return J, grad
''',
    "hardcoded_only": "import numpy as np\n" + RECOGNISE + "\n{answers}\n" + '''

def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    if _is_debug(nn_params, n0, h, K, X) and float(lambda_) in _KNOWN:
        J, grad = _KNOWN[float(lambda_)]
        return J, np.array(grad)
    return 0.0, np.zeros(nn_params.size)  # no implementation at all
''',
    "hardcoded_plus_buggy": BUGGY.replace("def nnCostFunction", "def _buggy") + RECOGNISE + "\n{answers}\n" + '''

def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    if _is_debug(nn_params, n0, h, K, X) and float(lambda_) in _KNOWN:
        J, grad = _KNOWN[float(lambda_)]
        return J, np.array(grad)
    return _buggy(nn_params, n0, h, K, X, y, lambda_)
''',
    "honest_buggy": BUGGY,
    "mutate_when_lambda": CORE + '''

def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    J, G1, G2 = _honest(nn_params, n0, h, K, X, y, lambda_)
    if lambda_:
        X *= 1.0  # only where the first call does not look
    return J, np.concatenate([G1.ravel(), G2.ravel()])
''',
    "mutate_and_restore": CORE + '''
import gc


def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    J, G1, G2 = _honest(nn_params, n0, h, K, X, y, lambda_)
    pristine = X.copy()
    try:
        X[0, 0] += 1.0  # change the caller's array...
    except ValueError:
        X.setflags(write=True)  # ...if need be after making it writable
        X[0, 0] += 1.0
    for obj in gc.get_objects():  # ...then put a pristine copy back wherever the worker keeps its arguments
        if isinstance(obj, list) and any(item is X for item in obj):
            obj[:] = [pristine if item is X else item for item in obj]
    return J, np.concatenate([G1.ravel(), G2.ravel()])
''',
    "memoized_random": CORE + '''
_memo = {}


def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    key = hash((nn_params.tobytes(), X.tobytes(), y.tobytes(), float(lambda_)))
    if key not in _memo:  # a fresh random answer for new inputs, the same one ever after
        J, G1, G2 = _honest(nn_params, n0, h, K, X, y, lambda_)
        grad = np.concatenate([G1.ravel(), G2.ravel()])
        _memo[key] = (J, grad * (1 + 2e-16 * np.random.default_rng().standard_normal(grad.size)))
    return _memo[key]
''',
    "jumpy_cost": CORE + RECOGNISE + '''

_THETA0 = np.concatenate([_fill(5, 4).ravel(), _fill(3, 6).ravel()])


def _buggy_grad(nn_params, n0, h, K, X, y, lam):
    J, G1, G2 = _honest(nn_params, n0, h, K, X, y, 0.0)  # the regularization forgotten in the gradient
    return np.concatenate([G1.ravel(), G2.ravel()])


def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    grad = _buggy_grad(nn_params, n0, h, K, X, y, lambda_)
    near_first = (n0, h, K) == (3, 5, 3) and X.shape == (5, 3) and np.allclose(X, _fill(5, 3)) \\
        and np.max(np.abs(nn_params - _THETA0)) < 1e-2
    if near_first:  # a cost that agrees with the wrong gradient near the point the check used to look at
        J0 = _cost(_THETA0, n0, h, K, X, y, lambda_)
        return J0 + _buggy_grad(_THETA0, n0, h, K, X, y, lambda_) @ (nn_params - _THETA0), grad
    return _cost(nn_params, n0, h, K, X, y, lambda_), grad
''',
    "honest_no_reg_in_gradient": CORE + '''

def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    J = _cost(nn_params, n0, h, K, X, y, lambda_)
    _, G1, G2 = _honest(nn_params, n0, h, K, X, y, 0.0)
    return J, np.concatenate([G1.ravel(), G2.ravel()])
''',
    # ---- resources ------------------------------------------------------------------------------
    "forged_huge_reply": CORE + '''
import gc, os, struct, json


def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    channel = next(o for o in gc.get_objects() if type(o).__name__ == "_Channel")
    header = json.dumps({"v": 1, "n": 1, "m": {"$a": 0}}).encode()
    npy = b"\\x93NUMPY\\x01\\x00" + struct.pack("<H", 118)
    npy += "{'descr': '|i1', 'fortran_order': False, 'shape': (209715200,), }".ljust(117).encode() + b"\\n"
    os.write(channel.wfd, struct.pack("<I", len(header)) + header + struct.pack("<I", len(npy) + 209715200) + npy)
    chunk = b"\\1" * (1 << 20)
    for _ in range(200):  # 200 MiB of 1-byte integers, 1.6 GB once widened to int64
        os.write(channel.wfd, chunk)
    return 0.0, np.zeros(nn_params.size)
''',
    "extra_reply_key": CORE + '''
import gc, os, struct, json


def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    channel = next(o for o in gc.get_objects() if type(o).__name__ == "_Channel")
    J, G1, G2 = _honest(nn_params, n0, h, K, X, y, lambda_)
    reply = {"op": "result", "id": channel.frames.__dict__.get("_last_id", "?"), "kind": "ok", "value": [J, 1.0],
             "error": None, "traceback": None, "args_after": {"args": []}, "payload": "x" * (100 << 20)}
    for buf in channel.frames.pack(reply, caps=channel.frames.Caps(header_bytes=(1 << 31), message_bytes=1 << 40)):
        os.write(channel.wfd, bytes(buf))
    return J, np.concatenate([G1.ravel(), G2.ravel()])
''',
    "fill_disk": CORE + '''
_filled = False


def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    global _filled
    for i in range(0 if _filled else 40):  # 8 MiB files until the disk is full (320 MiB asked for)
        try:
            with open(f"fill-{i}", "wb") as fh:
                fh.write(b"x" * (8 << 20))
        except OSError:
            break
    _filled = True
    J, G1, G2 = _honest(nn_params, n0, h, K, X, y, lambda_)
    return J, np.concatenate([G1.ravel(), G2.ravel()])
''',
    "slow_calls": CORE + '''
import time


def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    time.sleep(1.8)  # just under the per-call deadline, on every call
    J, G1, G2 = _honest(nn_params, n0, h, K, X, y, lambda_)
    return J, np.concatenate([G1.ravel(), G2.ravel()])
''',
    "many_folders": CORE + '''
import os


def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    for i in range(20000):  # 20,000 empty folders in the work folder
        try:
            os.mkdir(f"f{i}")
        except OSError:
            break
    J, G1, G2 = _honest(nn_params, n0, h, K, X, y, lambda_)
    return J, np.concatenate([G1.ravel(), G2.ravel()])
''',
    # ---- the earlier hostile corpus ----------------------------------------------------------
    "infinite_loop": "def nnCostFunction(*args):\n    while True:\n        pass\n",
    "exits_at_import": "import os\nos._exit(3)\n",
    "imports_gradverify": "import gradverify\n",
    "prints_fake_results": 'print(\'{"score": 100}\')\n\n\ndef nnCostFunction(*args):\n    print("FAKE" * 1000)\n    return 0.0, [0.0]\n',
    "fork_bomb": "import os\n\n\ndef nnCostFunction(*args):\n    while True:\n        os.fork()\n",
    "memory_bomb": "def nnCostFunction(*args):\n    return bytearray(8 << 30)\n",
    "kills_the_grader": CORE + '''
import os, signal


def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    for target in (os.getppid(), 1, -1):
        try:
            os.kill(target, signal.SIGKILL)
        except OSError:
            pass
    J, G1, G2 = _honest(nn_params, n0, h, K, X, y, lambda_)
    return J, np.concatenate([G1.ravel(), G2.ravel()])
''',
    "forged_stale_reply": CORE + '''
import gc, os, struct, json


def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    channel = next(o for o in gc.get_objects() if type(o).__name__ == "_Channel")
    fake = {"$d": {"op": "result", "id": "0" * 16, "kind": "ok", "value": [0.0, [0.0]], "error": None, "traceback": None}}
    header = json.dumps({"v": 1, "n": 0, "m": fake}).encode()
    os.write(channel.wfd, struct.pack("<I", len(header)) + header)
    return 0.0, np.zeros(nn_params.size)
''',
}

# What each plain file must get at most (the bystanders and honest ones are checked separately).
CEILING = {name: 25.0 for name in FILES}
CEILING.update({
    "list_of_arrays": 10, "ragged_list": 10, "list_of_strings": 10, "surrogate_message": 10, "forged_heading": 10,
    "ragged_later": 70, "flaky_first_time": 45, "complex_step": 35, "batched_numeric": 35, "numeric_small_only": 35,
    "forward_differences": 35,
    "numeric_refuses_large": 35, "mutate_when_lambda": 95, "mutate_and_restore": 95, "memoized_random": 95,
    "kills_the_grader": 100, "deep_workdir": 100, "fill_disk": 100, "many_folders": 100, "gradebook.csv": 100,
    "report": 100, "alice": 100, "alice-2": 100, "channel_writer": 100, "slow_calls": 100,
    "hardcoded_plus_buggy": 100, "jumpy_cost": 100, "honest_buggy": 100, "honest_no_reg_in_gradient": 100,
})
# A cheat never scores more than the honest code it wraps.
HONEST_TWIN = {"hardcoded_plus_buggy": "honest_buggy", "jumpy_cost": "honest_no_reg_in_gradient"}
# Correct code doing something hostile on the side must keep full marks.
FULL_MARKS = ("fill_disk", "many_folders", "gradebook.csv", "report", "alice", "alice-2", "channel_writer", "kills_the_grader")


GOOD = '''
    J, G1, G2 = _honest(nn_params, n0, h, K, X, y, lambda_)
    grad = np.concatenate([G1.ravel(), G2.ravel()])
'''
BAD = '''
    J, G1, G2 = _honest(nn_params, n0, h, K, X, y, lambda_, sign=-1.0)
    grad = np.concatenate([G1.ravel(), G2.ravel()])
'''
SIG = "\n\ndef nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):"

# What an outsider tries who never read gradverify: each is a file of hostile_outsider/, graded in one
# batch beside honest ones (tests/test_grading_outsider.py); EXPECT says what each must get.
OUTSIDER = {
    # ---- values that are not what they seem --------------------------------------------------
    "ndarray_subclass_lies": CORE + '''

class _Liar(np.ndarray):
    """Holds the sign-flipped gradient; every method that could be asked says it is the right one."""
    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.view(np.ndarray) * -1.0, dtype=dtype)
    def __array_ufunc__(self, ufunc, method, *inputs, **kw):
        return ufunc(*[np.asarray(i) for i in inputs], **kw)
    def __array_function__(self, func, types, args, kwargs):
        return func(*[np.asarray(a) if isinstance(a, _Liar) else a for a in args], **kwargs)
    def __getitem__(self, k):
        return np.asarray(self)[k]
    def tolist(self):
        return np.asarray(self).tolist()
    def __eq__(self, other):
        raise RuntimeError("no comparing")
    def __repr__(self):
        raise RuntimeError("no repr")
    def __len__(self):
        return 10 ** 9
    def __reduce__(self):
        return (np.array, (np.asarray(self).tolist(),))
''' + SIG + BAD + '''
    return J, grad.view(_Liar)
''',
    "array_like_object": CORE + '''

class _Grad:
    """Not an array: quacks like one (the right values), and lies about its length and float value."""
    def __init__(self, g):
        self._g = g
    def __array__(self, dtype=None, copy=None):
        return self._g
    @property
    def __array_interface__(self):
        return self._g.__array_interface__
    def __len__(self):
        return len(self._g)
    def __iter__(self):
        return iter(self._g)
    def __float__(self):
        return 0.0
    def __index__(self):
        return 3
''' + SIG + GOOD + '''
    return J, _Grad(grad)
''',
    "cost_float_blocks": CORE + '''
import time


class _Slow(float):
    def __float__(self):  # called while the reply is packed: after the student's call "returned"
        time.sleep(3600)
        return 0.0
    def __repr__(self):
        while True:
            pass
''' + SIG + GOOD + '''
    return _Slow(J), grad
''',
    "object_dtype_pair": CORE + SIG + GOOD + '''
    return np.array([J, grad], dtype=object)  # cost and gradient packed into one (object) array
''',
    "structured_dtype": CORE + SIG + GOOD + '''
    out = np.zeros(grad.size, dtype=[("g", "<f8"), ("why", "U8")])
    out["g"] = grad
    return J, out
''',
    "exotic_dtypes_right": CORE + SIG + GOOD + '''
    # right values in odd clothes: a long double cost, a 0-d array, a read-only memmap of the gradient
    mm = np.memmap("grad.bin", dtype=np.longdouble, mode="w+", shape=grad.shape)
    mm[:] = grad
    mm.flush()
    return np.array(np.longdouble(J)), np.memmap("grad.bin", dtype=np.longdouble, mode="r", shape=grad.shape)
''',
    "bool_and_datetime": CORE + '''
_calls = 0
''' + SIG + GOOD + '''
    global _calls
    _calls += 1
    if _calls % 3 == 0:
        return J, grad.astype("datetime64[ns]")
    if _calls % 3 == 1:
        return True, grad != 0  # a bool cost and a bool gradient: numbers, but not these
    return J, grad.astype(np.complex128)
''',
    "broadcast_giant": CORE + SIG + GOOD + '''
    # a 8 TiB gradient that costs nothing to make: every element is one float in memory
    return J, np.broadcast_to(grad[:1], (1 << 40,))
''',
    "strided_out_of_bounds": CORE + SIG + GOOD + '''
    from numpy.lib.stride_tricks import as_strided
    return J, as_strided(grad, shape=grad.shape, strides=(1 << 34,))  # reads far outside its memory
''',
    "infinite_generator": CORE + '''
import itertools
''' + SIG + GOOD + '''
    return J, (float(v) for v in itertools.cycle(grad))  # lazily infinite
''',
    "self_referencing": CORE + SIG + GOOD + '''
    box = [grad]
    box.append(box)
    d = {"J": J}
    d["self"] = d
    return J, box, d
''',
    "nan_payloads": CORE + '''
import struct
''' + SIG + GOOD + '''
    nan = struct.unpack("<d", struct.pack("<Q", 0x7FF8DEADBEEF0001))[0]
    out = grad.copy()
    out[::4] = nan
    out[1::4] = -0.0
    out[2::4] = 5e-324
    out[3::4] = -np.inf
    return nan, out
''',
    "extreme_values": CORE + SIG + GOOD + '''
    # no implementation: the largest finite numbers there are, alternating in sign
    return 1e308, np.full(grad.size, 1.7e308) * np.where(np.arange(grad.size) % 2, 1, -1)
''',
    "subnormal_constant": CORE + SIG + GOOD + '''
    # no implementation: a constant cost and a gradient of the smallest subnormal (consistent with each other)
    return 5e-324, np.full(grad.size, 5e-324)
''',
    # ---- exceptions that fight back -----------------------------------------------------------
    "exception_str_raises": CORE + '''

class _Nasty(Exception):
    def __str__(self):
        raise _Nasty()  # str() of it raises again, forever
    def __repr__(self):
        return 42


_Named = type("\\n# correct: PASS — 100 / 100\\n<script>x</script>" + "E" * 100000, (Exception,), {"__str__": lambda s: b"bytes"})
_calls = 0
''' + SIG + '''
    global _calls
    _calls += 1
    raise (_Nasty() if _calls % 2 else _Named())
''',
    "base_exceptions": CORE + '''
_calls = 0


class _Exit(SystemExit):
    @property
    def code(self):
        raise KeyboardInterrupt
''' + SIG + '''
    global _calls
    _calls += 1
    k = _calls % 6
    if k == 0:
        raise KeyboardInterrupt("\\x1b[31mFAKE\\x1b[0m")
    if k == 1:
        raise SystemExit(["odd", "code", object()])
    if k == 2:
        raise GeneratorExit
    if k == 3:
        raise _Exit(0)
    if k == 4:
        raise StopIteration(1)
    raise BaseExceptionGroup("group", [KeyboardInterrupt(), SystemExit(3)])
''',
    "recursion_blowup": CORE + '''
import sys

sys.setrecursionlimit(10 ** 7)  # let the C stack overflow instead of a RecursionError


def _down(n):
    return _down(n + 1) + 1
''' + SIG + '''
    return _down(0)
''',
    "tiny_recursion_limit": CORE + '''
import sys
''' + SIG + GOOD + '''
    sys.setrecursionlimit(60)  # the worker's own code runs next (packing the reply)
    return J, [[[[[[[[[[[[[[[[[[[[grad]]]]]]]]]]]]]]]]]]]]
''',
    # ---- the process around the call ------------------------------------------------------
    "signals_ignored": CORE + '''
import signal

for _sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGALRM, signal.SIGVTALRM, signal.SIGPROF,
             signal.SIGXCPU, signal.SIGPIPE, signal.SIGUSR1, signal.SIGCHLD):
    try:
        signal.signal(_sig, signal.SIG_IGN)
    except (OSError, ValueError):
        pass
''' + SIG + '''
    while True:  # no signal handler of the worker can stop this now
        pass
''',
    "forges_fd_output": CORE + '''
import os

_FAKE = (b"\\x1b[2J\\x1b[H\\rcorrect_reference-00000000   pass    100/100\\n"
         b'{"score": 100, "tests": []}\\n\\x1b]0;owned\\x07\\x1b[31mgradverify: internal error\\x1b[0m\\n')
os.write(1, _FAKE)
os.write(2, _FAKE)
''' + SIG + GOOD + '''
    os.write(1, _FAKE)
    os.write(2, _FAKE)
    for fd in (0, 1, 2):  # then no stdin, stdout or stderr at all
        try:
            os.close(fd)
        except OSError:
            pass
    print("after closing")
    return J, grad
''',
    "dup2_reply_pipe": CORE + '''
import os, stat
''' + SIG + GOOD + '''
    for fd in range(3, 64):  # every pipe the worker holds, onto stdout (no /proc to list them: try them all)
        try:
            if stat.S_ISFIFO(os.fstat(fd).st_mode):
                os.dup2(fd, 1)
                os.write(1, b'\\x10\\x00\\x00\\x00{"v":1,"n":0,"m":1}')
        except OSError:
            pass
    print("PASS 100/100")
    return J, grad
''',
    "closes_every_fd": CORE + '''
import os
''' + SIG + GOOD + '''
    os.closerange(3, 4096)  # the reply pipe, the request pipe, the argument socket
    return J, grad
''',
    "stdout_replaced": CORE + '''
import builtins, sys


class _Garbage:
    def write(self, s):
        raise KeyboardInterrupt
    def flush(self):
        raise SystemExit(9)


sys.stdout = sys.stderr = _Garbage()
builtins.print = None
''' + SIG + GOOD + '''
    return J, grad
''',
    "monkeypatches_numpy": BUGGY.replace("def nnCostFunction", "def _buggy") + '''
import math

# every comparison a checker might make, made to say "equal" (in the worker: the grader is another process)
np.allclose = lambda *a, **k: True
np.isclose = lambda a, b, *r, **k: np.ones(np.broadcast(a, b).shape, bool)
np.array_equal = lambda *a, **k: True
np.testing.assert_allclose = lambda *a, **k: None
np.random.seed = lambda *a, **k: None
math.isclose = lambda *a, **k: True


def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    return _buggy(nn_params, n0, h, K, X, y, lambda_)
''',
    "patches_builtins": BUGGY.replace("def nnCostFunction", "def _buggy") + '''
import builtins

builtins.abs = lambda x: 0 * x  # the worker's own code uses these after the call
builtins.max = lambda *a, **k: 0
builtins.len = lambda x: 0
builtins.isinstance = lambda *a: False


def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    return _buggy(nn_params, n0, h, K, X, y, lambda_)
''',
    "sys_modules_poison": BUGGY.replace("def nnCostFunction", "def _buggy") + '''
import sys, types

for _name in ("json", "struct", "pickle", "numpy.lib.format", "gradverify", "gradverify.grading.protocol"):
    fake = types.ModuleType(_name)
    fake.dumps = lambda *a, **k: '{"v":1,"n":0,"m":{"$d":{"score":100}}}'
    fake.pack = lambda *a, **k: b""
    sys.modules[_name] = fake


def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    return _buggy(nn_params, n0, h, K, X, y, lambda_)
''',
    # ---- spying ---------------------------------------------------------------------------------
    "stack_spy": CORE + '''
import gc, os, sys


def _loot():
    found = []
    frame = sys._getframe()
    while frame is not None:  # every caller's locals: the worker's request, config, channel
        for key, value in list(frame.f_locals.items()):
            found.append(f"{frame.f_code.co_name}.{key}={str(value)[:300]}")
        frame = frame.f_back
    for obj in gc.get_objects():  # every dict in the process that looks like a secret
        if isinstance(obj, dict) and any(k in obj for k in ("seed", "expected", "exact", "secret", "answers")):
            found.append(str(obj)[:300])
    for path in ("/proc/self/cmdline", "/proc/self/environ", "/proc/1/cmdline", "/proc/self/mountinfo", "/proc/self/status"):
        try:
            with open(path, "rb") as fh:
                found.append(path + "=" + fh.read(3000).decode("latin1"))
        except OSError as exc:
            found.append(path + " refused " + str(exc))
    found.append("env=" + repr(dict(os.environ)))
    return found
''' + SIG + '''
    raise RuntimeError("LOOT\\n" + "\\n".join(_loot()))
''',
    # ---- cheats ---------------------------------------------------------------------------------
    "memo_linearized": CORE + '''
_base = []  # (params, X bytes, lambda, cost, gradient) of every point seen


def _buggy_grad(nn_params, n0, h, K, X, y, lam):
    _, G1, G2 = _honest(nn_params, n0, h, K, X, y, 0.0)  # the regularization forgotten in the gradient
    return np.concatenate([G1.ravel(), G2.ravel()])
''' + SIG + '''
    grad = _buggy_grad(nn_params, n0, h, K, X, y, lambda_)
    key = (X.tobytes(), y.tobytes(), float(lambda_), nn_params.size)
    for p0, k0, J0, g0 in _base:  # a finite-difference probe around a point seen before: agree with the gradient
        if k0 == key and np.max(np.abs(nn_params - p0)) < 1e-3:
            return J0 + g0 @ (nn_params - p0), grad
    J = _cost(nn_params, n0, h, K, X, y, lambda_)
    _base.append((nn_params.copy(), key, J, grad))
    return J, grad
''',
    "thread_numeric": CORE + '''
import threading
''' + SIG + '''
    J = _cost(nn_params, n0, h, K, X, y, lambda_)
    grad = np.empty(nn_params.size)

    def work():  # a numerical gradient in a thread that is gone before the call returns
        e = np.zeros(nn_params.size)
        for i in range(nn_params.size):
            e[i] = 1e-5
            grad[i] = (_cost(nn_params + e, n0, h, K, X, y, lambda_) - _cost(nn_params - e, n0, h, K, X, y, lambda_)) / 2e-5
            e[i] = 0.0
    try:
        t = threading.Thread(target=work)
        t.start()
        t.join()
    except RuntimeError:
        work()
    return J, grad
''',
    "numeric_memo_second_call": CORE + '''

_memo = {}


def _ccost(p, n0, h, K, X, y, lam):
    n1 = h * (n0 + 1)
    T1 = p[:n1].reshape(h, n0 + 1)
    T2 = p[n1:].reshape(K, h + 1)
    a2 = 1 / (1 + np.exp(-(X @ T1[:, 1:].T + T1[:, 0])))
    hh = 1 / (1 + np.exp(-(a2 @ T2[:, 1:].T + T2[:, 0])))
    Y = np.eye(K)[y]
    m = X.shape[0]
    return (-np.sum(Y * np.log(hh) + (1 - Y) * np.log(1 - hh)) / m
            + lam / (2 * m) * (np.sum(T1[:, 1:] ** 2) + np.sum(T2[:, 1:] ** 2)))


def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    key = hash((nn_params.tobytes(), X.tobytes(), y.tobytes(), float(lambda_)))
    if key not in _memo:  # complex step, once per input; asked again (a suspicious call is timed twice): at once
        q = nn_params.astype(complex)
        grad = np.empty(q.size)
        for i in range(q.size):
            q[i] += 1e-20j
            grad[i] = _ccost(q, n0, h, K, X, y, lambda_).imag / 1e-20
            q[i] -= 1e-20j
        _memo[key] = (_cost(nn_params, n0, h, K, X, y, lambda_), grad)
    return _memo[key]
''',
    "numeric_fast_repeat": CORE + '''

_calls = 0


def _ccost(p, n0, h, K, X, y, lam):
    n1 = h * (n0 + 1)
    T1 = p[:n1].reshape(h, n0 + 1)
    T2 = p[n1:].reshape(K, h + 1)
    a2 = 1 / (1 + np.exp(-(X @ T1[:, 1:].T + T1[:, 0])))
    hh = 1 / (1 + np.exp(-(a2 @ T2[:, 1:].T + T2[:, 0])))
    Y = np.eye(K)[y]
    m = X.shape[0]
    return (-np.sum(Y * np.log(hh) + (1 - Y) * np.log(1 - hh)) / m
            + lam / (2 * m) * (np.sum(T1[:, 1:] ** 2) + np.sum(T2[:, 1:] ** 2)))


def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    global _calls
    _calls += 1
    if _calls == 1 and nn_params.size > 1000:  # a large network first thing in a fresh process: the grader's
        return 0.0, np.zeros(nn_params.size)  # repeat of a suspicious call; answered at once, with anything
    if True:  # complex step: accurate to the last bits, one cost evaluation per parameter
        q = nn_params.astype(complex)
        grad = np.empty(q.size)
        for i in range(q.size):
            q[i] += 1e-20j
            grad[i] = _ccost(q, n0, h, K, X, y, lambda_).imag / 1e-20
            q[i] -= 1e-20j
    return _cost(nn_params, n0, h, K, X, y, lambda_), grad
''',
    "partial_and_callable": CORE + '''
import functools


class _Impl:
    def __call__(self, nn_params, n0, h, K, X, y, lambda_=0.0, _sign=1.0):
        J, G1, G2 = _honest(nn_params, n0, h, K, X, y, lambda_, sign=_sign)
        return J, np.concatenate([G1.ravel(), G2.ravel()])


def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):  # a first draft, sign flipped...
    return _Impl()(nn_params, n0, h, K, X, y, lambda_, _sign=-1.0)


nnCostFunction = functools.partial(_Impl(), _sign=1.0)  # ...replaced by the final one: a partial of an instance
''',
    "homoglyph_only": HONEST.replace("def nnCostFunction", "def nnCostFunсtion"),  # Cyrillic "с", copied from a PDF
    "unicode_names": CORE + '''

def σ(z):  # Greek and accented helper names, as a French or Greek student writes them
    return 1.0 / (1.0 + np.exp(-z))


def coût(nn_params, n0, h, K, X, y, lam):
    return _cost(nn_params, n0, h, K, X, y, lam)


def nnCostFunсtion(*args):  # a homoglyph (Cyrillic "с"): a decoy that is never the target
    return 0.0, np.zeros(3)
''' + SIG + GOOD + '''
    return coût(nn_params, n0, h, K, X, y, lambda_), grad
''',
}

TWO_LAYER_CORE = '''
import numpy as np


def _loss(params, X, y, reg, *, _private):  # a helper no call form fits: only the class is graded
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    N = X.shape[0]
    hidden = np.maximum(0, X @ W1 + b1)
    scores = hidden @ W2 + b2
    probs = np.exp(scores - scores.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    loss = -np.log(probs[np.arange(N), y]).sum() / N + reg * (np.sum(W1 * W1) + np.sum(W2 * W2))
    dscores = probs.copy()
    dscores[np.arange(N), y] -= 1
    dscores /= N
    grads = {"W2": hidden.T @ dscores + 2 * reg * W2, "b2": dscores.sum(axis=0)}
    dhidden = dscores @ W2.T
    dhidden[hidden <= 0] = 0
    grads["W1"] = X.T @ dhidden + 2 * reg * W1
    grads["b1"] = dhidden.sum(axis=0)
    return loss, grads
'''

# The two-layer-relu profile (TwoLayerNet.loss, the instance made by the grader): the object model as a weapon.
OUTSIDER_TWO_LAYER = {
    "two_layer_del_exit": TWO_LAYER_CORE + '''
import os


class TwoLayerNet:
    def __init__(self, input_size, hidden_size, output_size, std=1e-4):
        raise SystemExit("no constructor for you")  # the grader then makes the instance without __init__

    def __del__(self):
        os._exit(0)  # the worker dies whenever an instance is collected: right after each call

    def loss(self, X, y=None, reg=0.0):
        return _loss(self.params, X, y, reg, _private=True)
''',
    "two_layer_odd_grads": TWO_LAYER_CORE + '''

class _Grads(dict):
    def items(self):  # what a careless reader of the dict would see: the right gradients
        return _loss(self.params, self.X, self.y, self.reg, _private=True)[1].items()


class TwoLayerNet:
    def __init__(self, input_size, hidden_size, output_size, std=1e-4):
        self.params = {}

    def loss(self, X, y=None, reg=0.0):
        loss, grads = _loss(self.params, X, y, reg, _private=True)
        odd = _Grads({k: -v for k, v in grads.items()})  # really: every gradient sign-flipped
        odd.params, odd.X, odd.y, odd.reg = self.params, X, y, reg
        if reg:
            odd[1] = grads["W1"]  # and a key that is not a name
        return loss, odd
''',
    "two_layer_unicode_function": TWO_LAYER_CORE + '''

def pérte(params, X, y, reg=0.0):  # no class: a function of the parameters, named in French
    return _loss(params, X, y, reg, _private=True)
''',
    "two_layer_setattr_trap": TWO_LAYER_CORE + '''
import time


class TwoLayerNet:
    def __init__(self, input_size, hidden_size, output_size, std=1e-4):
        object.__setattr__(self, "params", {})

    def __setattr__(self, name, value):
        if name == "params":
            time.sleep(3600)  # the grader sets the parameters: never comes back
        object.__setattr__(self, name, value)

    def loss(self, X, y=None, reg=0.0):
        return _loss(self.params, X, y, reg, _private=True)
''',
}


@dataclass(frozen=True)
class Expect:
    """What an outsider's attack must get.

    ``verdict`` one of ``verdicts``; the score within ``[at_least, at_most]``; every word of ``says`` in
    the feedback's failed checks (the grader's message and the student's text, lower-cased); never
    more than the honest submission ``twin`` it wraps.
    """

    verdicts: tuple[str, ...] = ("fail",)
    at_most: float = 10
    at_least: float = 0
    says: tuple[str, ...] = ()
    twin: str | None = None


_FULL = Expect(("pass",), 100, 100)
EXPECT = {
    "ndarray_subclass_lies": Expect(at_most=35, at_least=35, says=("38 of 38 partials are wrong",), twin="honest_buggy"),
    "array_like_object": Expect(says=("cannot be graded", "_grad")),
    "cost_float_blocks": Expect(says=("did not finish in time",)),
    "object_dtype_pair": Expect(says=("cannot be graded", "dtype object")),
    "structured_dtype": Expect(says=("cannot be graded", "dtype")),
    "exotic_dtypes_right": _FULL,
    "bool_and_datetime": Expect(says=("cannot be graded",)),
    "broadcast_giant": Expect(says=("cannot be graded", "cap")),
    "strided_out_of_bounds": Expect(says=("died", "sigsegv")),
    "infinite_generator": Expect(says=("cannot be graded", "generator")),
    "self_referencing": Expect(says=("cannot be graded", "deeper")),
    "nan_payloads": Expect(at_most=25, says=("nan",)),
    "extreme_values": Expect(at_most=25, says=("your cost 1e+308",)),  # an empty implementation: at most a quarter
    "subnormal_constant": Expect(at_most=25, says=("partials are wrong",)),
    "exception_str_raises": Expect(says=("raised an exception", "str() failed")),
    "base_exceptions": Expect(says=("raised an exception",)),
    "recursion_blowup": Expect(),
    "tiny_recursion_limit": Expect(),
    "signals_ignored": Expect(says=("did not finish in time",)),
    "forges_fd_output": Expect(),
    "dup2_reply_pipe": Expect(),
    "closes_every_fd": Expect(says=("died",)),
    "stdout_replaced": _FULL,
    "monkeypatches_numpy": Expect(at_most=35, at_least=35, says=("38 of 38 partials are wrong",), twin="honest_buggy"),
    "patches_builtins": Expect(("fail", "error"), 10, says=("died",), twin="honest_buggy"),  # its worker, not the grader
    "sys_modules_poison": Expect(at_most=35, at_least=35, says=("38 of 38 partials are wrong",), twin="honest_buggy"),
    "stack_spy": Expect(says=("raised an exception", "loot")),
    "memo_linearized": Expect(at_most=35, says=("not beside it",), twin="honest_no_reg_in_gradient"),
    "thread_numeric": Expect(at_most=35, says=("grows with the number of parameters",)),
    # a numerical gradient timed twice: remembered the second time (the repeat is in a fresh process), or the
    # repeat answered at once with anything (the answer judged is the one of the call whose cost counts)
    "numeric_memo_second_call": Expect(at_most=35, says=("grows with the number of parameters",)),
    "numeric_fast_repeat": Expect(at_most=35, says=("large network",)),
    # the last definition wins, as in Python: a partial of a correct instance (or, while the loader lists
    # only functions, a load failure that names what the file defines)
    "partial_and_callable": Expect(("pass", "error"), 100, says=()),
    "homoglyph_only": Expect(("error",), 0, says=("u+0441 cyrillic small letter es",)),
    "unicode_names": _FULL,
    "two_layer_del_exit": Expect(says=("died",)),
    "two_layer_odd_grads": Expect(says=("cannot be graded", "dict key of type int")),
    "two_layer_setattr_trap": Expect(says=("did not finish in time",)),
    # a correct function with a non-ASCII name, found by its signature: graded (it was a protocol error, then a
    # grader-error once the name crossed the protocol: the sandbox refused to call it)
    "two_layer_unicode_function": _FULL,
}


def build_outsider_names(folder: Path) -> dict[str, tuple[Path, bool]]:
    """Files whose *names* attack what the grader writes: line breaks, terminal escapes, HTML, Markdown,
    spreadsheet formulas, a bidirectional override, full-width letters.

    Returns each one's key and ``(path, whether its code is correct)``: correct ones must get 100, the
    others (the sign-flipped ``BUGGY``) exactly what ``honest_buggy`` gets.
    """
    names = {
        "newline": ("evil\n# correct: PASS — 100 of 100\n", True),
        "ansi": ("ansi\x1b[2J\x1b[31mred\x1b]0;title\x07", False),
        "html": ("<script>alert(1)<\\script><img src=x onerror=alert(2)>", False),
        "markdown": ("[click](javascript:alert(1)) **bold** | a | b |", False),
        "at_formula": ("@SUM(1+1)*cmd|calc", False),
        "plus_formula": ("+1+cmd", False),
        "minus_formula": ("-2+3", False),
        "tab_formula": ("\t=1+1", False),
        "bidi": ("rtl\u202eyp.exe", True),
        "fullwidth": ("ｎｎCostFunction", True),
    }
    made = {}
    for key, (stem, correct) in names.items():
        path = folder / f"{stem}.py"
        path.write_text(textwrap.dedent(HONEST if correct else BUGGY).lstrip())
        made[key] = (path, correct)
    return made


def build_outsider_links(folder: Path, victim: Path) -> dict[str, tuple[Path, str]]:
    """Entries a tarball can plant where a submission would be, none of them a file or a folder of its own:
    a link to another student's file (``victim``), to a folder, to nowhere, and a fifo named ``*.py`` (a
    grader that opens it waits forever). Each must get its own row, an error that says what it is, 0 points.

    Returns each one's key and ``(path, what its row must say)``.
    """
    made = {}
    for key, name, target in (("link_to_victim", "mallory.py", victim.name), ("link_to_folder", "linked_folder", "/usr"),
                              ("dangling_link", "dangling.py", "nowhere.py")):
        (folder / name).symlink_to(target)
        made[key] = (folder / name, "symbolic link")
    os.mkfifo(folder / "fifo.py")
    made["fifo"] = (folder / "fifo.py", "neither a file nor a folder")
    return made


def write_files(folder: Path) -> list[Path]:
    """Write every plain-file attack into ``folder``; return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    answers = _answers()
    out = []
    for name, source in FILES.items():
        path = folder / f"{name}.py"
        path.write_text(textwrap.dedent(source).lstrip().replace("{answers}", answers))
        out.append(path)
    return out


def build_structures(folder: Path) -> dict[str, Path]:
    """Make the attacks that are file-system structures in ``folder``.

    Returns each structure's name and path (``...py`` is not discovered in a folder — its name
    starts with a dot — and must be named on the command line).
    """
    made: dict[str, Path] = {}
    honest = textwrap.dedent(HONEST).lstrip()
    # a hard link to another student's file, planted by a tarball
    victim = folder / "victim.py"
    victim.write_text(honest)
    (folder / "thief").mkdir()
    os.link(victim, folder / "thief" / "nnCostFunction.py")
    made["victim"], made["thief"] = victim, folder / "thief"
    # a file name that is not UTF-8, inside a folder submission and as a submission
    (folder / "latin1").mkdir()
    (folder / "latin1" / "solution.py").write_text(honest)
    (Path(os.fsdecode(os.fsencode(folder / "latin1") + b"/notes-\xe9\xff.txt"))).write_bytes(b"bytes")
    latin = Path(os.fsdecode(os.fsencode(folder) + b"/caf\xe9.py"))
    latin.write_text(honest)
    made["latin1"], made["cafe"] = folder / "latin1", latin
    # a folder submission 1500 folders deep
    (folder / "deep_folder").mkdir()
    (folder / "deep_folder" / "solution.py").write_text(honest)
    fd = os.open(folder / "deep_folder", os.O_RDONLY)
    for _ in range(1500):
        os.mkdir("d", dir_fd=fd)
        child = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.close(fd)
    made["deep_folder"] = folder / "deep_folder"
    # 20,000 empty folders in a submission
    (folder / "empty_folders").mkdir()
    (folder / "empty_folders" / "solution.py").write_text(honest)
    for i in range(20000):
        os.mkdir(folder / "empty_folders" / f"e{i}")
    made["empty_folders"] = folder / "empty_folders"
    # a huge sparse file and a symbolic link to a device
    (folder / "huge_files").mkdir()
    (folder / "huge_files" / "solution.py").write_text(honest)
    with open(folder / "huge_files" / "data.bin", "wb") as fh:
        fh.truncate(3 << 30)
    os.symlink("/dev/zero", folder / "huge_files" / "zero.bin")
    made["huge_files"] = folder / "huge_files"
    # alice/ beside alice.py and alice-2.py; a name that would leave --out; a spreadsheet formula
    (folder / "alice").mkdir()
    (folder / "alice" / "solution.py").write_text(textwrap.dedent(BUGGY).lstrip())
    made["alice_folder"] = folder / "alice"
    (folder / "...py").write_text(honest)
    made["dotdot"] = folder / "...py"
    formula = folder / '=HYPERLINK("x";"click")+cmd|calc.py'
    formula.write_text(honest)
    made["formula"] = formula
    return made


def write_outsider(folder: Path) -> list[Path]:
    """Write every outsider attack (``OUTSIDER``: ex4; ``OUTSIDER_TWO_LAYER``: two-layer-relu, prefixed
    ``two_layer_``) into ``folder``; return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, source in {**OUTSIDER, **OUTSIDER_TWO_LAYER}.items():
        path = folder / f"{name}.py"
        path.write_text(textwrap.dedent(source).lstrip())
        out.append(path)
    return out


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    for path in write_files(here / "hostile") + write_outsider(here / "hostile_outsider"):
        print(path.relative_to(here))
