"""Running gradverify's costly tasks on a Dask cluster: the optional engine behind ``--scheduler``.

``gradverify grade --scheduler …`` sends one task per submission, ``gradverify suite --scheduler
…`` one task per generated case, to Dask's distributed scheduler: a ``LocalCluster`` of worker
processes started here (``local:N``), or an existing scheduler (its address, or the JSON file a
scheduler writes with ``--scheduler-file``). Everything that must happen exactly once stays on
the client: it decides what to run, receives every result, and writes every file.

Dask (``pip install 'gradverify[distributed]'``) is imported in this module only, and only when
a scheduler is asked for: the default stays one machine, with no extra dependency.

Failure policy: a worker that dies while it runs a task (killed, out of memory, its machine
lost) has the task rescheduled by Dask on another worker. The scheduler counts those deaths per
task and, past its ``allowed-failures``, gives the task up (``KilledWorker``). A LocalCluster
started here allows one death (a task runs at most twice); :meth:`Cluster.stream` hands a task
given up, or one that raised, back as a :class:`Lost` record, so the caller records it (a
``grader-error`` row) and a batch never waits for it forever.
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from gradverify.errors import InputError

__all__ = ["SchedulerSpec", "parse_scheduler", "connect", "Cluster", "Lost", "INSTALL_HINT"]

INSTALL_HINT = "pip install 'gradverify[distributed]'"
LOCAL_ALLOWED_FAILURES = 1  # a task whose worker dies twice is given up: a grader-error row, not a stuck batch


@dataclass(frozen=True)
class SchedulerSpec:
    """Where tasks run: ``local_workers`` > 0 starts a LocalCluster, else ``address`` is an existing scheduler."""

    text: str
    local_workers: int = 0
    address: str = ""  # "tcp://host:8786", "host:8786", … or a scheduler file (*.json)

    @property
    def is_file(self) -> bool:
        return self.address.endswith(".json")


@dataclass(frozen=True)
class Lost:
    """A task the cluster did not complete.

    ``kind`` is ``"worker-died"`` (its worker died more often than the scheduler allows:
    ``KilledWorker``) or ``"error"`` (the task raised, e.g. a worker without gradverify);
    ``detail`` says what happened, for an incident report; ``error`` is the exception itself.
    """

    kind: str
    detail: str
    error: BaseException | None = None


def parse_scheduler(text: str) -> SchedulerSpec:
    """Read a ``--scheduler`` value: ``local:N``, ``local`` (one worker per core), an address or a scheduler file.

    Raises:
        InputError: anything else (``local:0``, ``local:two``, a word without a port).
    """
    fix = "give local:N (N worker processes on this machine), a scheduler address such as tcp://host:8786, or a scheduler file"
    if not isinstance(text, str) or not text.strip():
        raise InputError("--scheduler is empty", expected="local:N or a scheduler address", fix=fix)
    text = text.strip()
    if text == "local" or text.startswith("local:"):
        count = text.partition(":")[2]
        if not count:
            import os

            return SchedulerSpec(text, local_workers=max(1, os.cpu_count() or 1))
        if not count.isdigit() or int(count) < 1:
            raise InputError(f"Cannot read --scheduler {text!r}", expected="local:N with N ≥ 1 worker processes",
                             received=text, fix=fix)
        return SchedulerSpec(text, local_workers=int(count))
    if text.endswith(".json"):
        if not Path(text).is_file():
            raise InputError(f"No scheduler file {text}", expected="the JSON file `dask scheduler --scheduler-file FILE` writes",
                             received=text, fix=fix)
        return SchedulerSpec(text, address=text)
    host = text.split("://", 1)[-1]
    if ":" not in host or not host.rsplit(":", 1)[1].isdigit():
        raise InputError(f"Cannot read --scheduler {text!r}", expected="an address with a port, e.g. tcp://10.0.0.5:8786",
                         received=text, fix=fix)
    return SchedulerSpec(text, address=text)


def _import_distributed():
    """The ``distributed`` package, or a clear error saying how to install it."""
    try:
        import dask
        import distributed
    except ImportError as exc:
        raise InputError("--scheduler needs Dask's distributed scheduler, which is not installed",
                         received=f"ImportError: {exc}", fix=INSTALL_HINT) from None
    return dask, distributed


def _gradverify_version() -> str:  # runs on every worker: the client and the workers must agree
    from gradverify._version import __version__

    return __version__


def connect(scheduler: str | SchedulerSpec, *, timeout: float = 20.0) -> Cluster:
    """Start a LocalCluster or connect to a scheduler; check that the workers run this gradverify.

    Args:
        scheduler: a ``--scheduler`` value or a parsed spec.
        timeout: seconds to wait for the scheduler (and a LocalCluster's workers).

    Returns:
        A connected :class:`Cluster` (a context manager: close it).

    Raises:
        InputError: Dask is not installed, the scheduler cannot be reached, or a worker runs
            another gradverify (or none).
    """
    spec = parse_scheduler(scheduler) if isinstance(scheduler, str) else scheduler
    dask, distributed = _import_distributed()
    local = None
    try:
        if spec.local_workers:
            # The scheduler runs in this process and reads its config when it is made.
            with dask.config.set({"distributed.scheduler.allowed-failures": LOCAL_ALLOWED_FAILURES}):
                local = distributed.LocalCluster(n_workers=spec.local_workers, threads_per_worker=1, processes=True,
                                                 host="127.0.0.1", dashboard_address=":0",  # any free port
                                                 silence_logs=logging.CRITICAL)  # the batch reports what went wrong itself
            client = distributed.Client(local, timeout=timeout)
        elif spec.is_file:
            client = distributed.Client(scheduler_file=spec.address, timeout=timeout)
        else:
            client = distributed.Client(spec.address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        if local is not None:
            local.close()
        where = "start a local cluster" if spec.local_workers else f"reach the Dask scheduler at {spec.address}"
        raise InputError(f"Cannot {where}", received=f"{type(exc).__name__}: {exc}",
                         fix="start one with `dask scheduler` and `dask worker ADDRESS --nthreads 1`, check the address, "
                             "or use --scheduler local:N") from None
    cluster = Cluster(spec, client, local)
    try:
        cluster.check_versions()
    except BaseException:
        cluster.close()
        raise
    return cluster


class Cluster:
    """A connected Dask client, and the LocalCluster behind it when this process started one.

    Use :func:`connect` to make one, and as a context manager (``close`` on exit).
    """

    def __init__(self, spec: SchedulerSpec, client, local=None):
        self.spec, self.client, self._local = spec, client, local
        self._token = secrets.token_hex(4)
        self._counter = itertools.count()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Cluster {self.spec.text}: {len(self.workers())} worker(s)>"

    def close(self) -> None:
        """Disconnect, and stop the LocalCluster if this process started it."""
        try:
            self.client.close()
        finally:
            if self._local is not None:
                self._local.close()
                self._local = None

    # ---- what the cluster is ------------------------------------------------------------------

    def workers(self) -> dict[str, int]:
        """Each worker's address and thread count, as the scheduler knows them now."""
        return {addr: int(w.get("nthreads", 1)) for addr, w in self.client.scheduler_info().get("workers", {}).items()}

    @property
    def allowed_failures(self) -> int | None:
        """How many worker deaths the scheduler forgives a task before giving it up (None: unknown)."""
        try:
            return int(self.client.run_on_scheduler(_allowed_failures))
        except Exception:  # a scheduler that refuses to run code for clients: it keeps its own policy
            return None

    @property
    def dashboard(self) -> str:
        """The dashboard's address, or "" when there is none (it needs bokeh)."""
        if not importlib.util.find_spec("bokeh"):
            return ""
        try:
            return str(self.client.dashboard_link or "")
        except Exception:
            return ""

    def describe(self) -> str:
        """One line for the terminal: where tasks run, how many workers, the failure policy."""
        workers = self.workers()
        threads = sorted(set(workers.values()))
        kind = "a local cluster" if self.spec.local_workers else f"the scheduler at {self.spec.address}"
        text = (f"{kind}: {len(workers)} worker(s)"
                + (f", {'/'.join(map(str, threads))} thread(s) each" if threads else ""))
        allowed = self.allowed_failures
        if allowed is not None:
            text += f"; a task whose worker dies {allowed + 1} time(s) is given up"
        if self.dashboard:
            text += f"; dashboard {self.dashboard}"
        return text

    def check_versions(self) -> None:
        """Raise ``InputError`` unless every worker runs the client's gradverify version."""
        mine = _gradverify_version()
        try:
            theirs = self.client.run(_gradverify_version)
        except Exception as exc:
            raise InputError("A Dask worker cannot run gradverify", received=f"{type(exc).__name__}: {exc}",
                             fix=f"install the same gradverify on every worker ({INSTALL_HINT}, version {mine})") from None
        other = {addr: v for addr, v in theirs.items() if v != mine}
        if other:
            raise InputError("Dask workers run another gradverify than this client",
                             expected=f"gradverify {mine} everywhere",
                             received=", ".join(f"{v} on {addr}" for addr, v in sorted(other.items())),
                             fix="install the client's version on every worker")

    def run_everywhere(self, fn: Callable[[], object]) -> dict[str, object]:
        """``fn()`` on every current worker, outside the task queue; ``{address: result}``."""
        return dict(self.client.run(fn))

    # ---- running tasks ------------------------------------------------------------------------

    def call(self, fn: Callable, *args, name: str = "task") -> object:
        """Run one task and wait for it; exceptions it raised are raised here."""
        return self.client.submit(fn, *args, key=self._key(name), pure=False).result()

    def stream(self, tasks: Iterable[tuple[object, Callable, tuple]], *, name: str = "task",
               window: int | None = None) -> Iterator[tuple[object, object]]:
        """Run ``fn(*args)`` for every ``(tag, fn, args)``; yield ``(tag, result or Lost)`` as each finishes.

        ``tasks`` is read lazily: at most ``window`` tasks are in flight, so a batch of tens of
        thousands never holds all its inputs in memory. The default is one task per worker
        thread (re-read as workers come and go): a task queued behind another on a worker that
        dies is counted by the scheduler as if it had killed it, so none waits on a worker.
        Each task is yielded exactly once. Closing the iterator early cancels the tasks in flight.
        """
        _, distributed = _import_distributed()
        pending = iter(tasks)
        tags = {}
        done = distributed.as_completed()
        limit, checked = self._window(window), time.monotonic()
        exhausted = False
        try:
            while True:
                while not exhausted and len(tags) < limit:
                    item = next(pending, None)
                    if item is None:
                        exhausted = True
                        break
                    tag, fn, args = item
                    future = self.client.submit(fn, *args, key=self._key(name), pure=False)
                    tags[future.key] = (tag, future)
                    done.add(future)
                if not tags:
                    return
                future = next(done)
                tag, _ = tags.pop(future.key)
                yield tag, _outcome(future, distributed)
                if window is None and time.monotonic() - checked > 1.0:
                    limit, checked = self._window(None), time.monotonic()
        finally:
            if tags:
                self.client.cancel([f for _, f in tags.values()])

    def _key(self, name: str) -> str:
        # Keys group tasks on the dashboard by name; the token keeps two clients of one scheduler apart.
        return f"gradverify-{name}-{self._token}-{next(self._counter)}"

    def _window(self, window: int | None) -> int:
        if window is not None:
            return max(1, window)
        return max(1, sum(self.workers().values()))


def _allowed_failures(dask_scheduler) -> int:  # runs on the scheduler
    return dask_scheduler.allowed_failures


def _outcome(future, distributed) -> object:
    """A finished future's result, or a ``Lost`` record saying why there is none."""
    try:
        return future.result()
    except distributed.KilledWorker as exc:
        return Lost("worker-died", f"the worker running this task died every time it was tried ({exc})", exc)
    except Exception as exc:
        return Lost("error", f"{type(exc).__name__}: {exc}", exc)
