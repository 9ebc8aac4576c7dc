"""The sandbox's files: a fresh root holding the worker's runtime and a copy of the submission.

Only regular files of the submission are copied (symbolic links, devices and fifos are never
followed or read), within a size budget, into a work directory the worker may write.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

from gradverify.grading.isolation import Plan, runtime_paths
from gradverify.grading.limits import Limits

__all__ = ["SubmissionError", "make_root"]

_HERE = Path(__file__).resolve().parent
_DEVICES_READ = ("/dev/zero", "/dev/urandom", "/dev/random")
_SKIPPED_DIRS = frozenset({".git", "__pycache__", ".ipynb_checkpoints"})


class SubmissionError(Exception):
    """The submission cannot be copied into the sandbox (missing, symlink, too large...)."""


def make_root(
    submission: Path, entry: str | None, limits: Limits, plan: Plan
) -> tuple[Path, dict]:
    root = Path(tempfile.mkdtemp(prefix="gradverify-sandbox-"))
    try:
        os.chmod(root, 0o711)
        rt, work = root / "rt", root / "work"
        rt.mkdir()
        (rt / "site").mkdir()
        work.mkdir()
        shutil.copyfile(_HERE / "frames.py", rt / "_gv_frames.py")
        shutil.copyfile(_HERE / "_worker.py", rt / "_gv_worker.py")
        paths = runtime_paths()
        for directory in paths["numpy"]:
            (rt / "site" / os.path.basename(directory)).symlink_to(directory)
        for path in (rt / "_gv_frames.py", rt / "_gv_worker.py"):
            os.chmod(path, 0o644)
        os.chmod(rt, 0o755)
        os.chmod(rt / "site", 0o755)
        entry_name = _copy_submission(submission, entry, work, limits.submission_bytes)
        os.chmod(work, 0o700)
        if plan.uid is not None:
            for dirpath, dirnames, filenames in os.walk(work):
                for name in [*dirnames, *filenames]:
                    os.lchown(os.path.join(dirpath, name), plan.uid, plan.uid)
            os.chown(work, plan.uid, plan.uid)
        if plan.fs_view:
            (root / "fs").mkdir()
            os.chmod(root / "fs", 0o755)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    read = [str(rt), *paths["numpy"], *paths["libs"], *_DEVICES_READ]
    config = {
        "site": str(rt / "site"),
        "work": str(work),
        "entry": entry_name,
        "module": Path(entry_name).stem,
        "fs_view": {
            "root": str(root / "fs"),
            "ro": [str(rt), *paths["numpy"], *paths["libs"]],
            "rw": [str(work)],
            "dev": ["/dev/null", *_DEVICES_READ],
            "host_mount_ns": os.readlink("/proc/self/ns/mnt"),
        }
        if plan.fs_view
        else None,
        "uid": plan.uid,
        "gid": plan.uid,
        "userns": plan.userns,
        "landlock": {"abi": plan.landlock, "read": read, "write": [str(work), "/dev/null"]}
        if plan.landlock
        else None,
        "limits": {
            "cpu": limits.cpu_seconds,
            "worker_cpu": limits.worker_cpu_seconds,
            "memory": limits.memory_bytes,
            "file": limits.file_bytes,
            "open_files": limits.open_files,
        },
        "caps": {"array_bytes": limits.array_bytes, "message_bytes": limits.message_bytes},
    }
    return root, config


def _copy_submission(src: Path, entry: str | None, work: Path, budget: int) -> str:
    """Copy the submission's regular files into ``work``; return the entry file's name."""
    try:
        info = os.lstat(src)
    except OSError as exc:
        raise SubmissionError(f"cannot read the submission {str(src)!r}: {exc.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise SubmissionError(f"the submission {str(src)!r} is a symbolic link: pass the real path")
    if stat.S_ISREG(info.st_mode):
        if src.suffix != ".py":
            raise SubmissionError(f"the submission {src.name!r} is not a .py file")
        if entry is not None and entry not in (src.name, src.stem):
            raise SubmissionError(f"entry {entry!r} given, but the submission is {src.name!r}")
        _copy_file(src, work / src.name, budget)
        return src.name
    if not stat.S_ISDIR(info.st_mode):
        raise SubmissionError(f"the submission {str(src)!r} is neither a file nor a folder")
    left, count = budget, 0
    for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
        rel = os.path.relpath(dirpath, src)
        target_dir = work if rel == "." else work / rel
        dirnames[:] = [
            d
            for d in dirnames
            if d not in _SKIPPED_DIRS and not os.path.islink(os.path.join(dirpath, d))
        ]
        for name in dirnames:
            (target_dir / name).mkdir(mode=0o755)
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not stat.S_ISREG(os.lstat(path).st_mode):
                continue  # symbolic links, fifos, sockets, devices: never followed or read
            count += 1
            if count > 1000:
                raise SubmissionError("the submission holds more than 1000 files")
            left -= _copy_file(Path(path), target_dir / name, left)
    tops = sorted(p.name for p in work.iterdir() if p.suffix == ".py" and p.is_file())
    if entry is not None:
        name = entry if entry.endswith(".py") else entry + ".py"
        if name not in tops:
            have = ", ".join(tops) or "no .py files"
            raise SubmissionError(f"the submission folder has no top-level {name!r} (it has {have})")
        return name
    if len(tops) != 1:
        found = ", ".join(tops) if tops else "none"
        raise SubmissionError(
            "the submission folder must hold exactly one top-level .py file "
            f"(found: {found}); name the one to import with entry="
        )
    return tops[0]


def _copy_file(src: Path, dst: Path, budget: int) -> int:
    # O_NOFOLLOW and O_NONBLOCK: a file swapped for a symlink or a fifo since lstat fails or
    # returns at once instead of leaking another file or hanging the grader.
    fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SubmissionError(f"{src.name!r} is not a regular file")
        data = os.read(fd, budget + 1)
        if len(data) > budget:
            raise SubmissionError("the submission is larger than Limits.submission_bytes")
    finally:
        os.close(fd)
    with open(dst, "wb") as out:
        out.write(data)
    os.chmod(dst, 0o644)
    return len(data)

