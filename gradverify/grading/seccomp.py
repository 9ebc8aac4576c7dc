"""The worker's seccomp filter: the system calls through which sandboxes could reach each other or the host.

The filter is a classic BPF program built here, in the grader, and handed to the worker as bytes;
the worker installs it with ``prctl(PR_SET_SECCOMP)`` before any student code runs (after
``no_new_privs``), and keeps it across everything it does afterwards. Refused calls fail with
``EPERM`` (``ENOSYS`` for ``clone3``, so that the C library falls back to ``clone``, whose flags
a classic filter can read); a call from another architecture's table kills the process.

Refused, by what they would let a submission do:

* talk to a later submission or another sandbox: the kernel keyrings (``add_key``, ``keyctl``,
  ``request_key`` — a user keyring outlives every process of its uid), System V and POSIX message
  queues, semaphores and shared memory, sockets other than Unix ones; and what a file both sandboxes
  see read-only (numpy, the standard library) would carry from one running sandbox to another: a
  lock on it (``flock``, ``fcntl`` record, OFD and lease commands), a watch on it (``inotify``,
  ``fcntl(F_NOTIFY)``), a futex keyed by it (``futex`` without ``FUTEX_PRIVATE_FLAG``, and the
  ``futex_waitv``/``futex_wait``/``futex_wake``/``futex_requeue`` calls, whose flags sit in memory);
* look into or change another process: ``ptrace``, ``process_vm_readv/writev``, ``kcmp``,
  ``pidfd_getfd``, ``perf_event_open``;
* leave its namespaces or make new ones: ``unshare``, ``setns``, ``clone`` with a ``CLONE_NEW*``
  flag, ``clone3``, ``mount`` and the new mount API, ``umount2``, ``pivot_root``, ``chroot``;
* widen the kernel's attack surface: ``bpf``, ``userfaultfd``, ``io_uring_*`` (whose operations
  bypass a filter), ``open_by_handle_at``, ``fanotify_init``, module and kexec loading, and the
  host-wide switches (``reboot``, ``swapon``, ``acct``, clocks, ``syslog``, host/domain names).

Everything else (files in the work directory, numpy, memory) is left to the other layers.
"""

from __future__ import annotations

import errno
import os
import struct

__all__ = ["DENIED", "program", "supported"]

# One table per architecture, from the kernel's unistd headers (tests/test_sandbox.py checks the
# x86_64 one against /usr/include when the headers are installed).
_NUMBERS = {
    "x86_64": {
        "ptrace": 101, "add_key": 248, "request_key": 249, "keyctl": 250, "bpf": 321, "userfaultfd": 323,
        "perf_event_open": 298, "mount": 165, "umount2": 166, "pivot_root": 155, "unshare": 272, "setns": 308,
        "chroot": 161, "kexec_load": 246, "kexec_file_load": 320, "init_module": 175, "finit_module": 313,
        "delete_module": 176, "reboot": 169, "swapon": 167, "swapoff": 168, "acct": 163, "settimeofday": 164,
        "adjtimex": 159, "clock_adjtime": 305, "syslog": 103, "process_vm_readv": 310, "process_vm_writev": 311,
        "kcmp": 312, "open_by_handle_at": 304, "name_to_handle_at": 303, "iopl": 172, "ioperm": 173,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "fanotify_init": 300,
        "quotactl": 179, "lookup_dcookie": 212, "vhangup": 153, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
        "fspick": 433, "move_mount": 429, "open_tree": 428, "mount_setattr": 442, "uselib": 134,
        "sethostname": 170, "setdomainname": 171, "pidfd_getfd": 438, "shmget": 29, "shmat": 30, "shmctl": 31,
        "shmdt": 67, "semget": 64, "semop": 65, "semctl": 66, "semtimedop": 220, "msgget": 68, "msgsnd": 69,
        "msgrcv": 70, "msgctl": 71, "mq_open": 240, "mq_unlink": 241, "mq_timedsend": 242,
        "mq_timedreceive": 243, "mq_notify": 244, "mq_getsetattr": 245,
        "flock": 73, "inotify_init": 253, "inotify_add_watch": 254, "inotify_init1": 294, "futex_waitv": 449,
        "futex_wake": 454, "futex_wait": 455, "futex_requeue": 456,
        "clone": 56, "clone3": 435, "socket": 41, "fcntl": 72, "futex": 202,
    },
    "aarch64": {
        "ptrace": 117, "add_key": 217, "request_key": 218, "keyctl": 219, "bpf": 280, "userfaultfd": 282,
        "perf_event_open": 241, "mount": 40, "umount2": 39, "pivot_root": 41, "unshare": 97, "setns": 268,
        "chroot": 51, "kexec_load": 104, "kexec_file_load": 294, "init_module": 105, "finit_module": 273,
        "delete_module": 106, "reboot": 142, "swapon": 224, "swapoff": 225, "acct": 89, "settimeofday": 170,
        "adjtimex": 171, "clock_adjtime": 266, "syslog": 116, "process_vm_readv": 270, "process_vm_writev": 271,
        "kcmp": 272, "open_by_handle_at": 265, "name_to_handle_at": 264,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "fanotify_init": 262,
        "quotactl": 60, "lookup_dcookie": 18, "vhangup": 58, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
        "fspick": 433, "move_mount": 429, "open_tree": 428, "mount_setattr": 442,
        "sethostname": 161, "setdomainname": 162, "pidfd_getfd": 438, "shmget": 194, "shmat": 196, "shmctl": 195,
        "shmdt": 197, "semget": 190, "semop": 193, "semctl": 191, "semtimedop": 192, "msgget": 186, "msgsnd": 189,
        "msgrcv": 188, "msgctl": 187, "mq_open": 180, "mq_unlink": 181, "mq_timedsend": 182,
        "mq_timedreceive": 183, "mq_notify": 184, "mq_getsetattr": 185,
        "flock": 32, "inotify_add_watch": 27, "inotify_init1": 26, "futex_waitv": 449,
        "futex_wake": 454, "futex_wait": 455, "futex_requeue": 456,
        "clone": 220, "clone3": 435, "socket": 198, "fcntl": 25, "futex": 98,
    },
}
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_SPECIAL = ("clone", "clone3", "socket", "fcntl", "futex")  # filtered on their arguments, below
DENIED = tuple(sorted(set(_NUMBERS["x86_64"]) - set(_SPECIAL)))
_CLONE_NEW = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x00000080
_AF_UNIX = 1
# fcntl commands that lock a file, lease it or watch a folder: F_GETLK, F_SETLK, F_SETLKW, F_OFD_GETLK, F_OFD_SETLK,
# F_OFD_SETLKW, F_SETLEASE, F_GETLEASE, F_NOTIFY. The files every sandbox shares (the standard library, numpy)
# are read-only, but a lock on one, taken in one sandbox, is seen from another: a channel.
_FCNTL_SHARED = (5, 6, 7, 36, 37, 38, 1024, 1025, 1026)
_FUTEX_PRIVATE = 128  # a futex without this flag is keyed by file and offset: two sandboxes mapping one file share it

# classic BPF
_LD_W_ABS, _JEQ_K, _JSET_K, _JGE_K, _RET_K = 0x20, 0x15, 0x45, 0x35, 0x06
_RET_ALLOW, _RET_KILL_PROCESS, _RET_ERRNO = 0x7FFF0000, 0x80000000, 0x00050000
_OFF_NR, _OFF_ARCH, _OFF_ARG0, _OFF_ARG1 = 0, 4, 16, 24  # struct seccomp_data; args are little-endian u64


def supported(machine: str | None = None) -> bool:
    """Whether a filter can be built for this machine's architecture."""
    return (machine or os.uname().machine) in _NUMBERS


def program(machine: str | None = None) -> bytes:
    """The filter as packed ``struct sock_filter`` entries (8 bytes each).

    Raises:
        ValueError: no system-call table for this architecture.
    """
    machine = machine or os.uname().machine
    if machine not in _NUMBERS:
        raise ValueError(f"no seccomp system-call table for {machine}")
    nr = _NUMBERS[machine]
    eperm, enosys = _RET_ERRNO | errno.EPERM, _RET_ERRNO | errno.ENOSYS
    code: list[tuple[int, int, int, int]] = [
        (_LD_W_ABS, 0, 0, _OFF_ARCH),
        (_JEQ_K, 1, 0, _AUDIT_ARCH[machine]),
        (_RET_K, 0, 0, _RET_KILL_PROCESS),
        (_LD_W_ABS, 0, 0, _OFF_NR),
    ]
    if machine == "x86_64":  # the x32 table (numbers with bit 30 set) is another way in
        code += [(_JGE_K, 0, 1, 0x40000000), (_RET_K, 0, 0, eperm)]
    for name in DENIED:
        if name in nr:
            code += [(_JEQ_K, 0, 1, nr[name]), (_RET_K, 0, 0, eperm)]
    code += [(_JEQ_K, 0, 1, nr["clone3"]), (_RET_K, 0, 0, enosys)]
    code += [  # clone: refused with any CLONE_NEW* flag
        (_JEQ_K, 0, 3, nr["clone"]),
        (_LD_W_ABS, 0, 0, _OFF_ARG0),
        (_JSET_K, 0, 1, _CLONE_NEW),
        (_RET_K, 0, 0, eperm),
        (_LD_W_ABS, 0, 0, _OFF_NR),
    ]
    code += [  # fcntl: no lock, lease or folder watch (descriptor flags, status flags, dup, seals stay)
        (_JEQ_K, 0, 2 * len(_FCNTL_SHARED) + 2, nr["fcntl"]),  # not fcntl: past the load, the pairs and the allow
        (_LD_W_ABS, 0, 0, _OFF_ARG1),
    ]
    for cmd in _FCNTL_SHARED:
        code += [(_JEQ_K, 0, 1, cmd), (_RET_K, 0, 0, eperm)]
    code += [(_RET_K, 0, 0, _RET_ALLOW)]
    code += [  # futex: process-private ones only (a single-threaded worker hardly ever waits on one)
        (_JEQ_K, 0, 4, nr["futex"]),
        (_LD_W_ABS, 0, 0, _OFF_ARG1),
        (_JSET_K, 1, 0, _FUTEX_PRIVATE),
        (_RET_K, 0, 0, eperm),
        (_RET_K, 0, 0, _RET_ALLOW),
    ]
    code += [  # socket: Unix domain only (the network namespace has no interface anyway)
        (_JEQ_K, 0, 3, nr["socket"]),
        (_LD_W_ABS, 0, 0, _OFF_ARG0),
        (_JEQ_K, 1, 0, _AF_UNIX),
        (_RET_K, 0, 0, eperm),
        (_RET_K, 0, 0, _RET_ALLOW),
    ]
    return b"".join(struct.pack("<HBBI", *insn) for insn in code)
