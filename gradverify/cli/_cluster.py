"""The ``--scheduler`` option shared by ``grade`` and ``suite``: where the costly tasks run."""

from __future__ import annotations

import contextlib
import sys

__all__ = ["add_scheduler_option", "open_cluster"]


def add_scheduler_option(p, what: str) -> None:
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help=f"run {what} as tasks on a Dask cluster: local:N starts N worker processes on this machine; "
                        "tcp://HOST:PORT (or a scheduler file, *.json) uses an existing scheduler. "
                        "Needs pip install 'gradverify[distributed]'")


def open_cluster(args):
    """A context manager: the connected cluster, or None when no ``--scheduler`` was given."""
    if not getattr(args, "scheduler", None):
        return contextlib.nullcontext(None)
    from gradverify.cluster import connect

    print(f"cluster  connecting to {args.scheduler} …", file=sys.stderr, flush=True)
    cluster = connect(args.scheduler)
    print(f"cluster  {cluster.describe()}", flush=True)
    return cluster
