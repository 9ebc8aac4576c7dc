"""The sandbox's files: one snapshot of the submission, the worker's runtime, and safe removal.

A submission is copied **once**, when its sandbox is made, into a private snapshot; every worker
(also one restarted after a crash) starts from that snapshot, and its fingerprint is the digest
of exactly what was copied — a file changed during the batch cannot be graded under an older
fingerprint. The copy trusts nothing it walks:

* only regular files and folders are copied: symbolic links are never followed (``O_NOFOLLOW``
  on every component, folders opened one level at a time), fifos, sockets and devices never
  opened;
* a submission holding a regular file with more than one hard link is **refused**, whole: another
  name for the same file may be another student's (a tarball can plant one), and no copy can
  tell which name is whose. Refusing only the file would grade the student whose file was
  linked to as if it were missing; instead neither is graded (the grader's ``grader-error``,
  "not your fault"), and the instructor is told to copy the files and grade again;
* files, folders (empty ones too), depth and bytes are counted on the copy and capped
  (``Limits.submission_*``); every read is capped before it happens;
* ``.git``, ``__pycache__`` and ``.ipynb_checkpoints`` folders are skipped.

Names are kept as the bytes they are (a name that is not UTF-8 is copied, hashed and shown
escaped, never decoded into an error). ``remove_tree`` deletes a tree of any depth without
recursion and without following links.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gradverify.grading.isolation import Plan, runtime_paths
from gradverify.grading.limits import Limits

__all__ = ["SubmissionError", "Snapshot", "snapshot", "fingerprint", "remove_tree", "sweep_stale_roots", "Root", "make_root",
           "reset_work", "worker_config", "show"]

_HERE = Path(__file__).resolve().parent
_RUNTIME = {"_worker.py": "_gv_worker.py", "_cage.py": "_gv_cage.py", "frames.py": "_gv_frames.py",
            "loader.py": "_gv_loader.py", "notebook.py": "_gv_notebook.py", "python2.py": "_gv_python2.py"}
_SOURCES = (".py", ".ipynb")  # what a submission's module can be: a Python file or a Jupyter notebook
_DEVICES_READ = ("/dev/zero", "/dev/urandom", "/dev/random")
_SKIPPED_DIRS = frozenset({".git", "__pycache__", ".ipynb_checkpoints"})
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


_LINKED = ("not graded: {} — a file with another name elsewhere may be another student's, and which is whose cannot be "
           "told; copy the files (cp, not cp -l or a hard-linking archive) and grade again")


class SubmissionError(Exception):
    """The submission cannot be copied into the sandbox (missing, too large...); the message is for the student.

    ``refused`` marks a refusal that is not the student's to fix (a hard link: which name of the
    file is whose cannot be told): the submission is then not graded at all, and the instructor told.
    """

    def __init__(self, message: str, *, refused: bool = False):
        super().__init__(message)
        self.refused = refused


def show(name: str | bytes) -> str:
    """A file name as it may appear in a message: escaped (repr), never longer than 80 characters."""
    text = os.fsdecode(name) if isinstance(name, bytes) else name
    shown = repr(text)
    return shown if len(shown) <= 80 else shown[:77] + "...'"


@dataclass(frozen=True)
class Snapshot:
    """What was copied from a submission: the module to import, the digest, counts, and what was left out."""

    entry: str
    digest: str
    files: int
    folders: int
    size: int
    skipped: tuple[str, ...] = ()


class _Walk:
    """Counts, caps and the digest of one walk over a submission (copying when ``dest`` is given)."""

    def __init__(self, dest: Path | None, limits: Limits):
        self.dest, self.limits = dest, limits
        self.hash = hashlib.sha256()
        self.files = self.folders = self.size = 0
        self.skipped: list[str] = []
        self.top_files: list[str] = []  # copied files at the top level (candidates for the entry module)
        self.nested_sources = 0  # copied .py/.ipynb below the top level (a package: cs231n/classifiers/fc_net.py)
        self.top_refused: dict[str, str] = {}  # top-level names not copied, and why
        self.links: list[str] = []  # hard-linked files: the submission is then refused

    def count(self) -> None:
        if self.files + self.folders >= self.limits.submission_entries:
            raise SubmissionError(f"the submission holds more than {self.limits.submission_entries} files and folders")

    def folder(self, rel: bytes) -> None:
        self.count()
        self.folders += 1
        self.hash.update(b"D" + rel + b"\0")
        if self.dest is not None:
            os.mkdir(os.path.join(os.fsencode(self.dest), rel), 0o755)

    def file(self, dir_fd: int, name: str, rel: bytes, info: os.stat_result) -> None:
        if info.st_nlink > 1:
            self.skip(rel, f"has {info.st_nlink} hard links (other names for the same file, maybe someone else's)")
            self.links.append(self.skipped[-1])
            return
        self.count()
        left = self.limits.submission_bytes - self.size
        data = _read_capped(dir_fd, name, left)
        self.files += 1
        self.size += len(data)
        self.hash.update(b"F" + rel + b"\0" + len(data).to_bytes(8, "little") + data)
        if b"/" not in rel:
            self.top_files.append(os.fsdecode(rel))
        elif rel.endswith((b".py", b".ipynb")):
            self.nested_sources += 1
        if self.dest is not None:
            fd = os.open(os.path.join(os.fsencode(self.dest), rel), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "wb") as out:
                out.write(data)


    def skip(self, rel: bytes, why: str) -> None:
        self.skipped.append(f"{show(rel)}: {why}")
        if b"/" not in rel:
            self.top_refused[os.fsdecode(rel)] = self.skipped[-1]


def _read_capped(dir_fd: int, name: str, left: int) -> bytes:
    # O_NOFOLLOW and O_NONBLOCK: a file swapped for a symlink or a fifo since it was listed fails
    # or returns at once instead of leaking another file or hanging the grader.
    fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
            raise SubmissionError(f"{show(name)} changed while it was being copied")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, left - total + 1))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > left:
                raise SubmissionError("the submission is larger than Limits.submission_bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


def _open_folder(top_fd: int, parts: list[str]) -> int:
    """A descriptor of the folder ``parts`` below ``top_fd``, opened one component at a time, no links followed."""
    fd = os.dup(top_fd)
    for part in parts:
        try:
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
        finally:
            os.close(fd)
        fd = child
    return fd


def _walk_folder(top_fd: int, walk: _Walk) -> None:
    """Depth-first over the folder, sorted by name, at most one descriptor open per level."""
    pending: list[list[str]] = [[]]
    while pending:
        parts = pending.pop()
        fd = _open_folder(top_fd, parts)
        try:
            names = sorted(os.listdir(fd), key=os.fsencode, reverse=True)
            children = []
            for name in reversed(names):
                rel = os.fsencode(os.path.join(*parts, name))
                info = os.stat(name, dir_fd=fd, follow_symlinks=False)
                if stat.S_ISDIR(info.st_mode):
                    if name in _SKIPPED_DIRS:
                        continue
                    if len(parts) + 1 > walk.limits.submission_depth:
                        raise SubmissionError(f"the submission is nested deeper than {walk.limits.submission_depth} folders")
                    walk.folder(rel)
                    children.append([*parts, name])
                elif stat.S_ISREG(info.st_mode):
                    walk.file(fd, name, rel, info)
                else:
                    kind = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a regular file"
                    walk.skip(rel, f"{kind}, never followed or read")
            pending.extend(reversed(children))
        finally:
            os.close(fd)


def snapshot(src: str | os.PathLike, dest: Path | None, *, entry: str | None = None, limits: Limits = Limits()) -> Snapshot:
    """Copy the submission ``src`` (a .py file or a folder) into the empty folder ``dest``.

    With ``dest=None`` nothing is written: the digest alone (see ``fingerprint``).

    Raises:
        SubmissionError: missing, a link, too large or too many files, nested too deep, no
            single entry module; the message says which.
    """
    src = Path(src)
    try:
        info = os.lstat(src)
    except OSError as exc:
        raise SubmissionError(f"cannot read the submission {show(str(src))}: {exc.strerror}") from None
    walk = _Walk(dest, limits)
    if stat.S_ISLNK(info.st_mode):
        raise SubmissionError(f"the submission {show(src.name)} is a symbolic link: pass the real path")
    if stat.S_ISREG(info.st_mode):
        if src.suffix not in _SOURCES:
            raise SubmissionError(f"the submission {show(src.name)} is not a .py file or a notebook (.ipynb)")
        if entry is not None and entry not in (src.name, src.stem):
            raise SubmissionError(f"entry {show(entry)} given, but the submission is {show(src.name)}")
        parent = os.open(src.parent, _DIR_FLAGS)
        try:
            walk.file(parent, src.name, os.fsencode(src.name), info)
        finally:
            os.close(parent)
        if walk.links:
            raise SubmissionError(_LINKED.format(walk.skipped[0]), refused=True)
        return Snapshot(src.name, walk.hash.hexdigest(), walk.files, 0, walk.size)
    if not stat.S_ISDIR(info.st_mode):
        raise SubmissionError(f"the submission {show(str(src))} is neither a file nor a folder")
    try:
        top = os.open(src, _DIR_FLAGS)
    except OSError as exc:
        raise SubmissionError(f"cannot read the submission folder {show(src.name)}: {exc.strerror}") from None
    try:
        _walk_folder(top, walk)
    except OSError as exc:
        raise SubmissionError(f"cannot copy the submission folder: {exc.strerror}") from None
    finally:
        os.close(top)
    if walk.links:
        raise SubmissionError(_LINKED.format("; ".join(walk.links[:3])), refused=True)
    name = _entry_of(walk, entry)
    return Snapshot(name, walk.hash.hexdigest(), walk.files, walk.folders, walk.size, tuple(walk.skipped))


def _entry_of(walk: _Walk, entry: str | None) -> str:
    """The top-level module to import, from what was copied (never from what was refused); "" when the
    folder holds several and none was named: the worker then finds the one that defines the target
    (``loader.find_entry``), by reading them, inside the sandbox."""
    tops = sorted(name for name in walk.top_files if name.endswith(_SOURCES))
    refused = [why for name, why in walk.top_refused.items() if name.endswith(_SOURCES)]
    if entry is not None:
        name = entry if entry.endswith(_SOURCES) else entry + ".py"
        if name not in tops:
            why = walk.top_refused.get(name)
            if why:
                raise SubmissionError(f"the entry file {why}; ask your instructor to make it a file of its own")
            have = ", ".join(show(t) for t in tops[:10]) or "no .py files"
            raise SubmissionError(f"the submission folder has no top-level {show(name)} (it has {have})")
        return name
    if not tops and not walk.nested_sources:
        extra = f"; not copied: {'; '.join(refused[:3])}" if refused else ""
        raise SubmissionError(f"the submission folder holds no top-level .py file or notebook{extra}")
    return tops[0] if len(tops) == 1 and not walk.nested_sources else ""  # else the worker reads them (packages too)


def fingerprint(src: str | os.PathLike, *, entry: str | None = None, limits: Limits = Limits()) -> str:
    """The digest ``snapshot`` would give, without copying (an empty string when it cannot be copied)."""
    try:
        return snapshot(src, None, entry=entry, limits=limits).digest
    except SubmissionError as exc:
        return "unreadable:" + hashlib.sha256(str(exc).encode("utf-8", "replace")).hexdigest()[:16]


def remove_tree(path: str | os.PathLike) -> None:
    """Delete ``path`` and everything under it: any depth, no recursion, no link followed, no error raised.

    Folders are entered by descriptor (so no path grows past ``PATH_MAX``) and left by ``..``,
    one open descriptor at a time; a folder whose mode forbids listing is opened up first.
    """
    path = os.fsencode(os.fspath(path))
    try:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            os.unlink(path)
            return
        fd = os.open(path, _DIR_FLAGS)
    except OSError:
        return
    depth = 0
    try:
        while True:
            descended = False
            try:
                os.fchmod(fd, 0o700)
            except OSError:
                pass
            for entry in os.scandir(fd):
                try:
                    if entry.is_dir(follow_symlinks=False):
                        try:
                            os.rmdir(entry.name, dir_fd=fd)
                        except OSError:
                            child = os.open(entry.name, _DIR_FLAGS, dir_fd=fd)
                            os.close(fd)
                            fd, depth, descended = child, depth + 1, True
                            break
                    else:
                        os.unlink(entry.name, dir_fd=fd)
                except OSError:
                    continue
            if descended:
                continue
            if depth == 0:
                break
            parent = os.open("..", _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd, depth = parent, depth - 1
    except OSError:
        pass
    finally:
        os.close(fd)
    try:
        os.rmdir(path)
    except OSError:
        pass


@dataclass(frozen=True)
class Root:
    """A sandbox's private folder on the host: ``rt`` (runtime), ``sub`` (the snapshot), ``work``, ``fs``."""

    path: Path
    snapshot: Snapshot
    packages: tuple[str, ...] = ()  # real paths of the allowed packages the worker may read

    @property
    def work(self) -> Path:
        return self.path / "work"


def _process_start(pid: int) -> str | None:
    """A live process's start time (field 22 of /proc/PID/stat), to tell it from a later one with the same pid.

    None when the process is gone, or a zombie (dead, waiting to be reaped: in a container whose
    init never reaps, a killed grader can stay one for ever).
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2:].split()
    return None if fields[0] in (b"Z", b"X") else fields[19].decode()


def sweep_stale_roots() -> int:
    """Delete the sandbox folders of graders that died without cleaning up (killed); return how many.

    Each root names its owner (pid and start time): only roots whose owner is gone are touched,
    so graders running at the same time are left alone.
    """
    swept = 0
    for root in Path(tempfile.gettempdir()).glob("gradverify-sandbox-*"):
        try:
            pid, start = (root / "owner").read_text().split()
            if os.lstat(root).st_uid != os.geteuid() or _process_start(int(pid)) == start:
                continue
        except (OSError, ValueError):
            continue
        remove_tree(root)
        swept += 1
    return swept


def make_root(submission: Path, entry: str | None, limits: Limits, packages: tuple[str, ...] = ()) -> Root:
    """A fresh private folder holding the runtime and one snapshot of the submission.

    Raises:
        SubmissionError: the submission cannot be copied (see ``snapshot``).
        OSError: the folder cannot be made (the grader's problem, not the student's).
    """
    root = Path(tempfile.mkdtemp(prefix="gradverify-sandbox-"))
    try:
        os.chmod(root, 0o711)
        (root / "owner").write_text(f"{os.getpid()} {_process_start(os.getpid())}")
        rt = root / "rt"
        (rt / "site").mkdir(parents=True)
        for name, copied in _RUNTIME.items():
            shutil.copyfile(_HERE / name, rt / copied)
            os.chmod(rt / copied, 0o644)
        for directory in dict.fromkeys([*runtime_paths()["numpy"], *packages]):  # the allowed packages, read-only
            (rt / "site" / os.path.basename(directory)).symlink_to(directory)
        os.chmod(rt, 0o755)
        os.chmod(rt / "site", 0o755)
        (root / "sub").mkdir(mode=0o700)
        snap = snapshot(submission, root / "sub", entry=entry, limits=limits)
        (root / "work").mkdir(mode=0o700)
        (root / "fs").mkdir(mode=0o755)
    except BaseException:
        remove_tree(root)
        raise
    return Root(root, snap, tuple(packages))


def reset_work(root: Root, plan: Plan, uid: int | None) -> None:
    """For a worker without a mount namespace: a fresh copy of the snapshot in the host's work folder."""
    remove_tree(root.work)
    root.work.mkdir(mode=0o700)
    if plan.namespaces:
        return  # the worker mounts its own tmpfs there and fills it
    sub = root.path / "sub"
    for dirpath, dirnames, filenames in os.walk(sub):  # our own snapshot: bounded, no links
        into = root.work / os.path.relpath(dirpath, sub)
        for name in dirnames:
            (into / name).mkdir(mode=0o755)
        for name in filenames:
            shutil.copyfile(os.path.join(dirpath, name), into / name, follow_symlinks=False)
            os.chmod(into / name, 0o644)
    if uid is not None:
        for dirpath, dirnames, filenames in os.walk(root.work):
            for name in [*dirnames, *filenames]:
                os.lchown(os.path.join(dirpath, name), uid, uid)
        os.chown(root.work, uid, uid)


def worker_config(root: Root, limits: Limits, plan: Plan, *, uid: int | None, seccomp: str, calibrate: list,
                  targets: tuple[str, ...] = ()) -> dict:
    """The JSON config the worker reads: paths, layers to apply, limits, caps, the targets to look for."""
    paths = runtime_paths()
    rt, work = root.path / "rt", root.work
    host_ns = os.readlink("/proc/self/ns/mnt")
    packages = [p for p in root.packages if p not in paths["numpy"]]
    read = [str(rt), *paths["numpy"], *packages, *paths["libs"], *_DEVICES_READ]
    return {
        "site": str(rt / "site"),
        "work": {"path": str(work), "source": str(root.path / "sub"), "host_mount_ns": host_ns,
                 "tmpfs_bytes": limits.work_bytes if plan.namespaces else 0, "tmpfs_inodes": limits.work_inodes},
        "entry": root.snapshot.entry,  # "" : the worker finds the file that defines a target
        "targets": [t.split(".")[0] for t in targets],
        "cell_seconds": limits.cell_seconds,
        "fs_view": {"root": str(root.path / "fs"), "ro": [str(rt), *paths["numpy"], *packages, *paths["libs"]],
                    "dev": ["/dev/null", *_DEVICES_READ], "host_mount_ns": host_ns} if plan.fs_view else None,
        "uid": uid,
        "landlock": {"abi": plan.landlock, "read": read, "write": [str(work), "/dev/null"]} if plan.landlock else None,
        "seccomp": seccomp if plan.seccomp else "",
        "calibrate": calibrate,
        "limits": {"cpu": limits.cpu_seconds, "worker_cpu": limits.worker_cpu_seconds, "memory": limits.memory_bytes,
                   "file": limits.file_bytes, "open_files": limits.open_files},
        "caps": {"header_bytes": 1 << 20, "array_bytes": limits.reply_bytes, "message_bytes": limits.reply_bytes + (1 << 20),
                 "decoded_bytes": limits.reply_bytes},
    }
