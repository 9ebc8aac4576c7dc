"""Grading on a Dask cluster: each submission shipped as bytes, graded on a worker, its grade sent back.

No shared filesystem is assumed. On the client, :func:`pack` reads a submission with the sandbox's
own copy rules (regular files only, never through a link, within ``Limits.submission_bytes``),
so exactly what a local run would copy into its sandbox travels, and nothing more. On the
worker, :func:`grade_packed` writes those bytes into a fresh temporary folder and runs the
batch's own one-submission function there: the sandbox, its isolation and its limits are the
worker machine's, exactly as on one machine. The grade comes back as a dict; the client alone
writes it (``batch``), so resume, the lock and one row per submission hold unchanged.

A submission the copy rules refuse (too large, a link, no module to import) is not shipped: the
client grades it locally, where the sandbox refuses it the same way before anything of it runs,
so its row is the one a local run writes.
"""

from __future__ import annotations

import os
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from gradverify.grading.files import SubmissionError, snapshot
from gradverify.grading.limits import Limits

__all__ = ["Packed", "pack", "unpack", "grade_packed", "grade_on_cluster"]

# One submission at a time per worker process: the grader keeps per-process state (the isolation
# probe, Hypothesis' engine, the oracle's caches) and is CPU-bound under the GIL, so a worker with
# several threads gains nothing from grading two at once. Parallelism comes from worker processes.
_ONE_AT_A_TIME = threading.Lock()


@dataclass(frozen=True)
class Packed:
    """A submission as bytes: its file or folder name, its folders and its regular files."""

    name: str
    folder: bool
    files: tuple[tuple[str, bytes], ...]  # POSIX paths relative to the folder (the file's own name for a file)
    dirs: tuple[str, ...] = ()  # folders inside the submission, parents first (empty ones too)

    @property
    def size(self) -> int:
        return sum(len(data) for _, data in self.files)

    def __repr__(self) -> str:  # never the bytes
        return f"Packed({self.name!r}, {'folder' if self.folder else 'file'}, {len(self.files)} file(s), {self.size} bytes)"


def pack(path: str | os.PathLike, *, entry: str | None = None, limits: Limits = Limits()) -> Packed:
    """Read a submission as the sandbox would copy it.

    Args:
        path: a ``.py`` file or a folder.
        entry: for a folder of several modules, the one to import (checked as the sandbox does).
        limits: ``submission_bytes`` caps the total size.

    Returns:
        The submission's bytes.

    Raises:
        SubmissionError: the sandbox would refuse it (too large, a link, not a .py file, no entry…).
        OSError: it cannot be read.
    """
    src = Path(path)
    with tempfile.TemporaryDirectory(prefix="gradverify-pack-") as tmp:
        work = Path(tmp) / "work"
        work.mkdir()
        snapshot(src, work, entry=entry, limits=limits)  # the sandbox's own rules and caps
        files, dirs = [], []
        for dirpath, dirnames, filenames in os.walk(work):
            rel = Path(dirpath).relative_to(work)
            dirnames.sort()
            dirs += [(rel / d).as_posix() for d in dirnames]
            files += [((rel / f).as_posix(), (Path(dirpath) / f).read_bytes()) for f in sorted(filenames)]
    if src.is_dir():
        return Packed(src.name, True, tuple(files), tuple(dirs))
    return Packed(src.name, False, tuple(files))


def _safe_parts(relative: str) -> tuple[str, ...]:
    parts = PurePosixPath(relative).parts
    if not parts or relative.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"unsafe path in a packed submission: {relative!r}")
    return parts


def unpack(packed: Packed, into: str | os.PathLike) -> Path:
    """Write ``packed`` under the folder ``into``; return the submission's path there.

    Raises:
        ValueError: a name that would leave ``into`` (never made by :func:`pack`).
    """
    into = Path(into)
    if packed.name in ("", ".", "..") or "/" in packed.name or "\0" in packed.name:
        raise ValueError(f"unsafe submission name in a packed submission: {packed.name!r}")
    base = into / packed.name if packed.folder else into
    base.mkdir(parents=True, exist_ok=True)
    for relative in packed.dirs:
        base.joinpath(*_safe_parts(relative)).mkdir(parents=True, exist_ok=True)
    for relative, data in packed.files:
        target = base.joinpath(*_safe_parts(relative))
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "xb") as out:  # "x": never over something already there
            out.write(data)
    return into / packed.name


def grade_packed(packed: Packed, job: Callable[[str], dict]) -> dict:
    """On a worker: unpack into a fresh temporary folder and return ``job(path)`` (the batch's grading).

    The folder is deleted afterwards, whatever happened.
    """
    with _ONE_AT_A_TIME, tempfile.TemporaryDirectory(prefix="gradverify-task-") as tmp:
        _quiet_random_warning()
        return job(str(unpack(packed, tmp)))


def _quiet_random_warning() -> None:
    # The worker's own threads (heartbeats, data transfers) use the `random` module while
    # Hypothesis draws cases in the task's thread; Hypothesis sees the global state move and
    # warns that a strategy used `random`, though ours do not. The draws are unaffected.
    from hypothesis.errors import HypothesisDeprecationWarning

    warnings.filterwarnings("ignore", message="Do not use the `random` module inside strategies",
                            category=HypothesisDeprecationWarning)


def grade_on_cluster(cluster, items: Iterable[tuple[object, Path, str | None, Callable[[str], dict]]], *,
                     limits: Limits = Limits()) -> Iterator[tuple[object, object]]:
    """Grade every submission on ``cluster``; yield ``(tag, grade dict or cluster.Lost)`` as each is done.

    Args:
        cluster: a connected :class:`gradverify.cluster.Cluster`.
        items: ``(tag, path, entry, job)`` per submission; ``job(path) -> dict`` grades the
            submission found at ``path`` (it must be picklable: it travels to the workers).
            Read lazily, so a submission is read only when it is about to be sent.
        limits: the size cap of what is sent.

    Each tag is yielded exactly once. The grade's ``path`` is the client's path, not the worker's.
    """
    refused: list[tuple[object, Path, Callable[[str], dict]]] = []

    def tasks():
        for tag, path, entry, job in items:
            try:
                packed = pack(path, entry=entry if Path(path).is_dir() else None, limits=limits)
            except (SubmissionError, OSError):
                refused.append((tag, path, job))  # refused by the copy rules: see the module's docstring
                continue
            yield (tag, path), grade_packed, (packed, job)

    for (tag, path), outcome in cluster.stream(tasks(), name="grade"):
        if isinstance(outcome, dict):
            outcome["path"] = str(path)
        yield tag, outcome
    for tag, path, job in refused:
        yield tag, job(str(path))
