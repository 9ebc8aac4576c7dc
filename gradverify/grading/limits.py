"""Resource limits of one sandboxed worker: the numbers every layer of the sandbox enforces."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Limits"]


@dataclass(frozen=True)
class Limits:
    """Resource limits for one worker; all sizes in bytes, all times in seconds.

    Args:
        call_timeout: wall-clock deadline of one call (the worker is killed after it).
        load_timeout: wall-clock deadline for starting the worker and importing the submission.
        cpu_seconds: CPU time one call may use (``RLIMIT_CPU`` soft limit, re-armed per call).
        worker_cpu_seconds: CPU time over a worker's life (hard limit); the worker is replaced
            before a call could exceed it.
        memory_bytes: address space of the worker (``RLIMIT_AS``).
        file_bytes: largest file the worker may write (``RLIMIT_FSIZE``).
        open_files: most open file descriptors (``RLIMIT_NOFILE``).
        output_bytes: stdout and stderr kept per call, each; the rest is counted and dropped.
        array_bytes: largest array accepted from the worker.
        message_bytes: largest reply accepted from the worker.
        submission_bytes: largest submission (all files) copied into the sandbox.
    """

    call_timeout: float = 10.0
    load_timeout: float = 20.0
    cpu_seconds: int = 10
    worker_cpu_seconds: int = 600
    memory_bytes: int = 1 << 30
    file_bytes: int = 16 << 20
    open_files: int = 64
    output_bytes: int = 64 << 10
    array_bytes: int = 256 << 20
    message_bytes: int = 512 << 20
    submission_bytes: int = 16 << 20

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"Limits.{name} must be a positive number, got {value!r}")
        integral = ("cpu_seconds", "worker_cpu_seconds", "memory_bytes", "file_bytes", "open_files")
        for name in integral:
            if not isinstance(getattr(self, name), int):
                raise ValueError(f"Limits.{name} must be an int, got {getattr(self, name)!r}")
        if self.worker_cpu_seconds < self.cpu_seconds:
            raise ValueError("Limits.worker_cpu_seconds must be at least Limits.cpu_seconds")
        if self.array_bytes >= 1 << 32:
            raise ValueError("Limits.array_bytes must stay below 4 GiB")

