"""Grade many submissions: discovery, safe output names, parallel workers, atomic outputs, resume.

Layout under the output folder::

    gradebook.csv                        one row per submission (rewritten after each one)
    .gradverify.lock                     held while a batch runs: a second batch on the folder is refused
    .gradverify/batch.json               the batch's secret seed (for the instructor; reused on resume)
    <stem>-<hash>/feedback.md, .json     for the student / for programs
    <stem>-<hash>/results.json           Gradescope's format

**A batch always finishes.** Each submission is graded in a pool process; anything that goes
wrong while handling one — in the grader, the profile, the writer, or the pool process dying —
becomes that submission's row with verdict ``grader-error``, a short incident text and 0 points,
never the end of the batch. A rerun re-grades ``grader-error`` rows.

**Names.** A submission's folder is its sanitised stem (ASCII letters, digits, ``_``, ``-``) plus
a short hash of its file name: safe whatever the name (``..``, ``=cmd``, not UTF-8), unique
(``alice.py``, ``alice/`` and ``alice-2.py`` get three folders), stable from run to run, always a
direct child of the output folder, and never a class-level name (``gradebook.csv``, ``report``).

**Resume.** A submission is done when its ``feedback.json`` holds the key of the same files,
profile, settings and options. The key of a graded submission comes from the copy that was
graded (``files.snapshot``), so a file changed during the batch is graded again next time.
Every file is written to a temporary name and renamed, so a kill at any moment leaves either the
old file or the new one — never half — and nothing is graded twice or lost.
"""

from __future__ import annotations

import concurrent.futures as cf
import fcntl
import hashlib
import json
import math
import multiprocessing
import os
import re
import stat
import time
import traceback
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from gradverify._io import write_atomic
from gradverify.errors import InputError
from gradverify.grading.cases import new_seed
from gradverify.grading.checks import not_graded
from gradverify.grading.feedback import feedback_markdown, gradebook_csv, gradescope_results
from gradverify.grading.files import fingerprint, sweep_stale_roots
from gradverify.grading.grader import Grade, Verdict, grade_submission
from gradverify.grading.limits import Limits
from gradverify.grading.text import clean
from gradverify.profiles import Profile, get_profile

__all__ = ["Submission", "BatchOptions", "discover", "grade_batch", "grader_error", "output_name", "CLASS_NAMES"]

# The gradebook is rewritten whole: after every result, a batch of 10,000 would write it 10,000
# times at up to 10,000 rows (bench/RESULTS.md, section 7). At most every 2 s, and at the end, it
# costs a fixed share of the time instead. Nothing depends on it mid-batch: each submission's
# feedback.json is what marks it done, and a resumed batch rewrites the gradebook from them.
GRADEBOOK_EVERY = 2.0

CLASS_NAMES = frozenset({"gradebook.csv", "report", ".gradverify", ".gradverify.lock"})
_STATE = ".gradverify"
_LOCK = ".gradverify.lock"


@dataclass(frozen=True)
class Submission:
    """One submission: its output folder name (safe, unique, stable) and where it is."""

    name: str
    path: Path


@dataclass(frozen=True)
class BatchOptions:
    """How a batch grades (all of it is part of each submission's resume key).

    Args:
        examples: generated cases per submission.
        seed: the batch's secret seed; None draws a fresh one (or reuses the seed of the batch
            being resumed in the same output folder).
        saturating: also generate saturated units.
        call_timeout: wall-clock seconds of one call.
        budget: wall-clock seconds of all of a submission's calls and starts together.
        report: also write a report of each failing submission's case.
        entry: the module to import in submissions of several files.
        pinned: the settings the instructor fixed (``--set``); the others are detected per submission.
        packages: distributions allowed besides the profile's (``--allow-package``).
    """

    examples: int = 20
    seed: int | None = None
    saturating: bool = False
    call_timeout: float = 10.0
    budget: float = 120.0
    report: bool = False
    entry: str | None = None
    pinned: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()

    def limits(self) -> Limits:
        return Limits(call_timeout=self.call_timeout, cpu_seconds=max(10, math.ceil(self.call_timeout)),
                      budget_seconds=self.budget)


def output_name(path: Path, *, unique_by: bytes | None = None) -> str:
    """The output folder of a submission: a sanitised stem and 8 hex digits of a hash of its name."""
    raw = os.fsencode(path.name)
    stem = path.stem if path.suffix == ".py" else path.name
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_-")[:40] or "submission"
    digest = hashlib.sha256(unique_by if unique_by is not None else raw).hexdigest()[:8]
    return f"{safe}-{digest}"


_SOURCES = (".py", ".ipynb")


def _python_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in _SOURCES and p.is_file() and not p.is_symlink()
                  and not p.name.startswith("."))


def _imports_a_sibling(files: list[Path]) -> bool:
    """Whether one of ``files`` imports another by its module name (``from sigmoid import sigmoid``): then
    they are one submission of several modules, not a class of one-file submissions. Read as text
    (capped, never parsed or run); a notebook's JSON quotes its lines, which the pattern allows."""
    stems = [re.escape(p.stem) for p in files if p.suffix == ".py" and p.stem.isidentifier()]
    if not stems:
        return False
    pattern = re.compile(rb'(^|\n|")\s*(from|import)\s+(\.*|\.+\s+import\s+)(' + "|".join(stems).encode() + rb')\b')  # relative too
    for p in files:
        try:  # no link followed, and a fifo swapped in since the listing returns at once instead of hanging
            fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode) and pattern.search(os.read(fd, 1 << 20)):
                return True
        except OSError:
            continue
        finally:
            os.close(fd)
    return False


def _subfolders(folder: Path) -> list[Path]:
    return sorted(d for d in folder.iterdir() if d.is_dir() and not d.is_symlink() and not d.name.startswith((".", "__")))


def _odd_entries(folder: Path) -> list[Path]:
    """Entries of a class folder that stand where a submission would but are neither a regular file nor a
    folder: a symbolic link (to a file, a folder or nowhere: a tarball can plant ``mallory.py -> alice.py``),
    a fifo, a socket or a device named ``*.py``. Each is a submission of its own, never followed, opened or
    read: its row says what it is (``files.snapshot`` refuses it), where it would otherwise be left out unseen."""
    odd = []
    for p in folder.iterdir():
        if p.name.startswith("."):
            continue
        try:
            mode = os.lstat(p).st_mode
        except OSError:
            continue
        if stat.S_ISLNK(mode) and (p.suffix in _SOURCES or p.is_dir()):
            odd.append(p)
        elif not (stat.S_ISLNK(mode) or stat.S_ISREG(mode) or stat.S_ISDIR(mode)) and p.suffix in _SOURCES:
            odd.append(p)
    return sorted(odd)


def discover(paths: list[str | Path], *, entry: str | None = None) -> list[Submission]:
    """Submissions from the command line: a .py or .ipynb file, a student's folder, or a class folder.

    A folder with subfolders is a class folder: each top-level file and **each subfolder** is one
    submission (a subfolder without Python files too: its row says so). A folder of files only is
    one student's submission of several modules when one of its files imports another (the worker
    then finds the file that defines the target), else a class of one-file submissions. With
    ``entry`` (a file name such as ``nnCostFunction.py``), a folder that holds that file is one
    submission, the entry importing its siblings. Only the first level of a folder is looked at
    (deeper folders belong to the submissions themselves).

    Raises:
        InputError: a path that does not exist or is not a .py file, or no submission at all.
    """
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        try:
            if p.is_file():
                if p.suffix not in _SOURCES:
                    raise InputError(f"{clean(p)} is not a Python file or a notebook", expected="a .py or .ipynb file, or a folder",
                                     received=clean(p.name))
                found.append(p)
            elif p.is_dir():
                found += _discover_folder(p, entry)
            else:
                raise InputError(f"No such submission: {clean(p)}", fix="give .py files or folders that exist")
        except OSError as exc:
            raise InputError(f"Cannot read {clean(p)}", received=clean(exc.strerror), fix="check the permissions") from None
    if not found:
        raise InputError("No submissions found", expected="Python files, or folders holding them",
                         received=", ".join(clean(x) for x in paths))
    names = [output_name(path) for path in found]
    return [Submission(output_name(path, unique_by=os.fsencode(os.path.abspath(path))) if names.count(name) > 1 else name,
                       path) for path, name in zip(found, names)]


def _discover_folder(p: Path, entry: str | None) -> list[Path]:
    files, dirs = _python_files(p), _subfolders(p)
    if entry and (p / entry).is_file():
        return [p]  # one submission of several files
    if entry and not files:
        return [d for d in dirs if (d / entry).is_file()]  # a folder of such submissions
    if (p / "__init__.py").is_file() or (dirs and all((d / "__init__.py").is_file() for d in dirs)):
        return [p]  # a package, or a project whose folders are packages (cs231n/classifiers/…): one student's code
    if not dirs and (len(files) == 1 or _imports_a_sibling(files)):
        return [p]  # one student's folder: one file, or modules that import each other
    return files + dirs + _odd_entries(p)  # a class folder: every file and every folder is a submission, each gets its row


def _key(digest: str, profile: Profile, settings: dict, options: BatchOptions, seed: int) -> str:
    """The resume key: the graded files' digest, the profile, the settings, every option, the grader's version."""
    from gradverify import __version__

    h = hashlib.sha256(digest.encode())
    h.update(json.dumps([profile.name, profile.rubric, settings, {**asdict(options), "seed": seed}, __version__],
                        sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def grader_error(sub: Submission, profile: Profile, fingerprint_: str, incident: str) -> Grade:
    """The row of a submission gradverify itself failed on: 0 points, the incident, never the student's fault."""
    checks = [not_graded(name, profile.rubric) for name in profile.rubric]
    return Grade(sub.name, clean(sub.path), profile.name, {}, Verdict.GRADER_ERROR, 0.0, float(sum(profile.rubric.values())),
                 checks, fingerprint=fingerprint_, incident=clean(incident, 2000))


def _incident(exc: BaseException) -> str:
    """What failed inside gradverify, short: the exception and the innermost frames."""
    frames = traceback.extract_tb(exc.__traceback__)[-4:]
    where = "; ".join(f"{Path(f.filename).name}:{f.lineno} in {f.name}" for f in frames)
    return f"{type(exc).__name__}: {clean(exc, 1500)}" + (f" (at {where})" if where else "")


def _grade_one(args: tuple) -> dict:
    """In a process of the pool: grade one submission and return it as a dict (never raises)."""
    path, name, profile_name, settings, options, seed = args
    try:
        profile = get_profile(profile_name) if isinstance(profile_name, str) else profile_name  # a Profile on a cluster
        entry = options.entry if Path(path).is_dir() else None
        grade = grade_submission(path, profile, settings, examples=options.examples, seed=seed, limits=options.limits(),
                                 entry=entry, saturating=options.saturating, report=options.report,
                                 pinned=tuple(options.pinned), packages=tuple(options.packages))
        grade.submission = name
        return grade.to_dict()
    except Exception as exc:  # a failure inside gradverify: this submission's grader-error, never the batch's end
        try:
            profile = get_profile(profile_name)
        except Exception:
            return {"grader_error": _incident(exc)}
        return grader_error(Submission(name, Path(path)), profile, "", _incident(exc)).to_dict()


def _write_outputs(out: Path, grade: Grade) -> None:
    folder = out / grade.submission
    if grade.report_doc is not None:  # the picture of the failing case, beside the feedback
        _write_report(grade.report_doc, folder / "report")
        grade.report_doc = None  # feedback.json stays small; the document is report/report.json
        if grade.failing_case is not None:
            grade.failing_case["report"] = "report/report.html"
    if grade.reproduce is not None:  # the graded call, made again by `python reproduce.py`
        # graded where it was given (not where a cluster's worker unpacked it): that is where it is run again
        where = "SUBMISSION = " + repr(str(Path(grade.path).resolve()))
        write_atomic(folder / "reproduce.py", re.sub(r"^SUBMISSION = .*$", lambda _m: where, grade.reproduce, count=1, flags=re.M))
        grade.reproduce = None
    write_atomic(folder / "feedback.md", feedback_markdown(grade))
    write_atomic(folder / "results.json", json.dumps(gradescope_results(grade), indent=1))
    write_atomic(folder / "feedback.json", json.dumps(grade.to_dict(), indent=1, default=str))  # last: marks it done


def _write_report(doc: dict, folder: Path) -> None:
    """A failing case's report.json/.md/.html: a network's (``report``) or a layer's (``layers.report``)."""
    if doc.get("kind") == "layer":
        from gradverify.layers.report import render_document

        texts = {f"report.{fmt}": render_document(doc, fmt) for fmt in ("json", "md", "html")}  # all rendered, then written
        for name, text in texts.items():
            write_atomic(folder / name, text)
        return
    from gradverify.report import write_report

    write_report(doc, folder)


def _load_done(out: Path, sub: Submission, key: str) -> Grade | None:
    """The grade a previous run wrote for ``sub``, if it is still valid (a grader-error is never kept)."""
    try:
        data = json.loads((out / sub.name / "feedback.json").read_text(encoding="utf-8"))
        grade = Grade.from_dict(data) if data.get("fingerprint") == key else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return None if grade is None or grade.verdict == Verdict.GRADER_ERROR else grade


class _Lock:
    """``.gradverify.lock`` held (``flock``) for the batch's life: the kernel releases it if we die."""

    def __init__(self, out: Path):
        self.fd = os.open(out / _LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self.fd, 64, 0).decode("ascii", "replace").strip()
            os.close(self.fd)
            raise InputError(f"Another batch is grading into {clean(out)} (process {holder or '?'})",
                             fix="wait for it to finish, or give another --out; two batches are never merged") from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, str(os.getpid()).encode(), 0)

    def release(self) -> None:
        os.close(self.fd)


def _batch_seed(out: Path, seed: int | None) -> int:
    """The batch's seed: the one given, else the one of the batch being resumed here, else a fresh secret one."""
    state = out / _STATE / "batch.json"
    if seed is None:
        try:
            seed = int(json.loads(state.read_text(encoding="utf-8"))["seed"])
        except (OSError, ValueError, KeyError, TypeError):
            seed = new_seed()
    (out / _STATE).mkdir(mode=0o700, exist_ok=True)
    write_atomic(state, json.dumps({"seed": seed}))
    os.chmod(state, 0o600)  # for the instructor's eyes: it rebuilds every hidden case
    return seed


def grade_batch(submissions: list[Submission], profile: Profile | str, settings: dict, out: str | Path, *, jobs: int = 2,
                examples: int = 20, seed: int | None = None, saturating: bool = False, call_timeout: float = 10.0,
                budget: float = 120.0, report: bool = False, entry: str | None = None, pinned: tuple[str, ...] = (),
                packages: tuple[str, ...] = (), progress: Callable[[int, int, Grade, bool], None] | None = None,
                cluster=None) -> list[Grade]:
    """Grade ``submissions`` into ``out``, ``jobs`` at a time, skipping those already done.

    The options are those of ``BatchOptions``. ``progress(done, total, grade, resumed)`` is called
    after each submission. Returns the grades in the order of ``submissions``, one per
    submission, whatever happened. With ``cluster`` (a connected ``gradverify.cluster.Cluster``)
    each submission is graded as one task on a Dask worker instead of in a local pool (``jobs``
    is then unused); this process still writes everything, so resume and the lock are unchanged.

    Raises:
        InputError: another batch holds ``out``.
    """
    options = BatchOptions(examples=examples, seed=seed, saturating=saturating, call_timeout=float(call_timeout),
                           budget=float(budget), report=report, entry=entry, pinned=tuple(sorted(pinned)),
                           packages=tuple(sorted(packages)))
    prof = get_profile(profile) if isinstance(profile, str) else profile
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lock = _Lock(out)
    try:
        return _run(submissions, prof, settings, out, options, jobs, progress, cluster)
    finally:
        lock.release()


def _run(submissions, prof: Profile, settings: dict, out: Path, options: BatchOptions, jobs: int, progress,
         cluster=None) -> list[Grade]:
    for stale in out.glob("**/.*.tmp"):  # half-written temporaries of a run that was killed
        stale.unlink(missing_ok=True)
    sweep_stale_roots()  # and the sandbox folders it left behind
    seed = _batch_seed(out, options.seed)
    keys = {s.name: _key(fingerprint(s.path, entry=options.entry if s.path.is_dir() else None, limits=options.limits()),
                         prof, settings, options, seed) for s in submissions}
    grades: dict[str, Grade] = {}
    todo = []
    for s in submissions:
        done = _load_done(out, s, keys[s.name])
        if done is None:
            todo.append(s)
            continue
        grades[s.name] = done
        if progress:
            progress(len(grades), len(submissions), done, True)

    written = [0.0]  # when the gradebook was last rewritten

    def record(s: Submission, grade: Grade) -> None:
        grades[s.name] = _write(out, s, grade, prof, settings, options, seed)
        if time.monotonic() - written[0] >= GRADEBOOK_EVERY:
            write_atomic(out / "gradebook.csv", gradebook_csv(list(grades.values()), seed=seed))
            written[0] = time.monotonic()
        if progress:
            progress(len(grades), len(submissions), grades[s.name], False)

    if cluster is None:
        _pool(todo, prof, settings, options, seed, max(1, jobs), record)
    else:
        _on_cluster(cluster, todo, prof, settings, options, seed, record)
    write_atomic(out / "gradebook.csv", gradebook_csv(list(grades.values()), seed=seed))
    return [grades[s.name] for s in submissions]


def _pool(todo: list[Submission], prof: Profile, settings: dict, options: BatchOptions, seed: int, jobs: int, record) -> None:
    """Grade ``todo`` in pool processes; a pool that breaks is replaced, its submissions tried again one by one."""
    name = prof.source or prof.name  # a TOML profile travels to the workers by its path
    ctx = multiprocessing.get_context("spawn")  # the grader is threaded (sandbox I/O); fork is unsafe
    rounds = [(todo, jobs)]
    while rounds:
        batch, width = rounds.pop(0)
        broken = []
        with cf.ProcessPoolExecutor(max_workers=width, mp_context=ctx) as pool:
            futures = {pool.submit(_grade_one, (str(s.path), s.name, name, settings, options, seed)): s for s in batch}
            for fut in cf.as_completed(futures):
                s = futures[fut]
                try:
                    data = fut.result()
                except BrokenProcessPool:
                    broken.append(s)
                    continue
                except Exception as exc:
                    data = {"grader_error": _incident(exc)}
                record(s, _grade_from(data, s, prof))
        if broken and width == 1 and len(batch) == 1:
            record(broken[0], grader_error(broken[0], prof, "", "the grading process died (killed, or out of memory)"))
        elif broken:  # alone, each in a pool of its own: the one that breaks it is found
            rounds += [([s], 1) for s in broken]


def _grade_at(name: str, prof: Profile, settings: dict, options: BatchOptions, seed: int, path: str) -> dict:
    return _grade_one((path, name, prof, settings, options, seed))


def _on_cluster(cluster, todo: list[Submission], prof: Profile, settings: dict, options: BatchOptions, seed: int, record) -> None:
    """Grade ``todo`` on a Dask cluster, one task per submission (``grading/remote.py``); record each as it arrives."""
    import functools

    from gradverify.grading.remote import grade_on_cluster

    jobs = ((s, s.path, options.entry, functools.partial(_grade_at, s.name, prof, settings, options, seed)) for s in todo)
    for s, data in grade_on_cluster(cluster, jobs, limits=options.limits()):
        if not isinstance(data, dict):  # the cluster gave the task up (its worker died every time), or it raised
            data = {"grader_error": f"on the cluster: {data.detail}"}
        elif "grader_error" not in data:
            data["path"] = clean(str(s.path), 2000)  # where the client has it, as a local run says (not the worker's copy)
        record(s, _grade_from(data, s, prof))


def _grade_from(data: dict, s: Submission, prof: Profile) -> Grade:
    if "grader_error" in data:
        return grader_error(s, prof, "", data["grader_error"])
    try:
        return Grade.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        return grader_error(s, prof, "", _incident(exc))


def _write(out: Path, s: Submission, grade: Grade, prof: Profile, settings: dict, options: BatchOptions, seed: int) -> Grade:
    """Write a submission's files (its key from the graded copy); a failure there is a grader-error too."""
    grade = replace(grade, submission=s.name)
    if grade.verdict != Verdict.GRADER_ERROR:
        grade.fingerprint = _key(grade.fingerprint, prof, settings, options, seed)
    try:
        _write_outputs(out, grade)
        return grade
    except Exception as exc:
        failed = grader_error(s, prof, "", "writing the outputs failed: " + _incident(exc))
        try:
            _write_outputs(out, failed)
        except Exception:
            pass  # the gradebook row still says it
        return failed
