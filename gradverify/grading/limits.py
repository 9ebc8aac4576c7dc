"""Resource limits of one sandbox: the numbers every layer of the sandbox enforces."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Limits"]


@dataclass(frozen=True)
class Limits:
    """Resource limits for one sandbox; all sizes in bytes, all times in seconds.

    Args:
        call_timeout: wall-clock deadline of one call (the worker is killed after it).
        load_timeout: wall-clock deadline for starting the worker and importing the submission.
        budget_seconds: wall-clock time the sandbox may spend in all (starts, restarts and calls
            together); a call after that is refused with kind ``"budget"``.
        cpu_seconds: CPU time one call may use (``RLIMIT_CPU`` soft limit, re-armed per call).
        worker_cpu_seconds: CPU time over a worker's life (hard limit); the worker is replaced
            before a call could exceed it.
        memory_bytes: address space of the worker (``RLIMIT_AS``).
        file_bytes: largest file the worker may write (``RLIMIT_FSIZE``).
        open_files: most open file descriptors (``RLIMIT_NOFILE``).
        output_bytes: stdout and stderr kept per call, each; the rest is counted and dropped.
        reply_bytes: largest reply accepted from the worker, counted as received *and* as
            decoded (every number widened to 8 bytes), before anything is decoded.
        submission_bytes: largest submission (all files) copied into the sandbox.
        submission_entries: most files and folders in a submission (empty folders count).
        submission_depth: deepest folder nesting in a submission.
        work_bytes: size of the work directory's tmpfs (where the kernel allows one).
        work_inodes: most files and folders the submission may create in its work directory.
        cell_seconds: wall-clock time one notebook cell may run while the notebook is loaded; a cell
            that trains or loads data past it is stopped and skipped (the load itself stays within
            ``load_timeout``).
    """

    call_timeout: float = 10.0
    load_timeout: float = 20.0
    budget_seconds: float = 600.0
    cpu_seconds: int = 10
    worker_cpu_seconds: int = 600
    memory_bytes: int = 1 << 30
    file_bytes: int = 16 << 20
    open_files: int = 64
    output_bytes: int = 64 << 10
    reply_bytes: int = 16 << 20
    submission_bytes: int = 16 << 20
    submission_entries: int = 1000
    submission_depth: int = 16
    work_bytes: int = 64 << 20
    work_inodes: int = 4096
    cell_seconds: float = 3.0

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"Limits.{name} must be a positive number, got {value!r}")
        integral = ("cpu_seconds", "worker_cpu_seconds", "memory_bytes", "file_bytes", "open_files", "output_bytes",
                    "reply_bytes", "submission_bytes", "submission_entries", "submission_depth", "work_bytes", "work_inodes")
        for name in integral:
            if not isinstance(getattr(self, name), int):
                raise ValueError(f"Limits.{name} must be an int, got {getattr(self, name)!r}")
        if self.worker_cpu_seconds < self.cpu_seconds:
            raise ValueError("Limits.worker_cpu_seconds must be at least Limits.cpu_seconds")
        if self.reply_bytes >= 1 << 31:
            raise ValueError("Limits.reply_bytes must stay below 2 GiB")
