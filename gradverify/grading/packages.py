"""Packages a submission may import: the instructor's allow-list, resolved to what the sandbox exposes.

Real submissions import more than numpy: ``scipy.special.expit``, pandas or scikit-learn to one-hot
encode labels, matplotlib because the course template does. An assignment profile names the
distributions it allows (``packages = [...]``; ``gradverify grade --allow-package NAME`` adds one),
and ``resolve`` turns them — with everything they require at run time — into the directories the
sandbox mounts read-only and puts on the worker's path. Nothing else of the grader's environment is
visible, exactly as before; an ``import`` of anything else fails inside the sandbox, and
``blocked_import`` turns that failure into a sentence naming the package and the option that allows it.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import re
from dataclasses import dataclass

from gradverify.profiles import SCIENTIFIC_PACKAGES

__all__ = ["DEFAULT_PACKAGES", "Resolved", "resolve", "normalize", "blocked_import"]

DEFAULT_PACKAGES = SCIENTIFIC_PACKAGES  # what ex4 and the two-layer net allow (profiles.py says why)
_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def normalize(name: str) -> str:
    """A distribution name in PEP 503 form (``scikit_learn`` → ``scikit-learn``)."""
    return re.sub(r"[-_.]+", "-", name).lower().strip()


@dataclass(frozen=True)
class Resolved:
    """The allow-list resolved on this machine.

    ``allowed``: the distributions asked for that are installed; ``missing``: those that are not;
    ``support``: what they need at run time (exposed too, importable by the student as a side effect);
    ``paths``: real paths of every top-level package, module and ``.dist-info`` to expose.
    """

    allowed: tuple[str, ...]
    missing: tuple[str, ...]
    support: tuple[str, ...]
    paths: tuple[str, ...]

    def __str__(self) -> str:
        text = ", ".join(self.allowed) or "none"
        return text + (f" (not installed here: {', '.join(self.missing)})" if self.missing else "")


def _distribution(name: str) -> md.Distribution | None:
    try:
        return md.distribution(name)
    except md.PackageNotFoundError:
        return None


def _requires(dist: md.Distribution) -> list[str]:
    out = []
    for req in dist.requires or ():
        spec, _, marker = req.partition(";")
        if "extra" in marker:
            continue  # optional features: not needed to import the package
        match = _NAME.match(spec)
        if match:
            out.append(normalize(match.group(1)))
    return out


def _top_level(dist: md.Distribution) -> list[str]:
    """Real paths of the distribution's top-level entries (packages, modules, .libs, its .dist-info)."""
    tops = set()
    for f in dist.files or ():
        parts = f.parts
        if not parts or parts[0] in ("..", "__pycache__") or parts[0].endswith((".pth", ".data")):
            continue
        tops.add(parts[0])
    paths = []
    for top in sorted(tops):
        path = os.path.realpath(str(dist.locate_file(top)))
        if os.path.exists(path):
            paths.append(path)
    return paths


def resolve(names: list[str] | tuple[str, ...]) -> Resolved:
    """The allow-list ``names`` (distribution names) with their run-time requirements, on this machine."""
    allowed, missing, support, paths = [], [], [], []
    seen: set[str] = set()
    queue = [(normalize(n), True) for n in names]
    while queue:
        name, asked = queue.pop(0)
        if name in seen:
            continue
        seen.add(name)
        dist = _distribution(name)
        if dist is None:
            if asked:
                missing.append(name)
            continue
        (allowed if asked else support).append(name)
        paths += [p for p in _top_level(dist) if p not in paths]
        queue += [(req, False) for req in _requires(dist)]
    return Resolved(tuple(allowed), tuple(missing), tuple(sorted(support)), tuple(paths))


def blocked_import(module: str, resolved: Resolved) -> str | None:
    """Feedback for ``ModuleNotFoundError: No module named 'module'`` in the sandbox, or None when the
    module is simply not a package (a missing file of the student's own, a typo)."""
    top = module.split(".")[0]
    try:
        owners = md.packages_distributions().get(top, [])
    except Exception:  # a broken installation on the grader's side: say nothing rather than something wrong
        owners = []
    if not owners:
        return None
    dist = normalize(owners[0])
    if dist in resolved.allowed or dist in resolved.support:
        return None  # allowed and exposed: the failure is something else
    return (f"the submission imports {top} (package {dist}), which this assignment does not allow; "
            f"allowed: {', '.join(resolved.allowed) or 'the standard library only'}. The instructor can allow it with "
            f"--allow-package {dist} or packages = [..., \"{dist}\"] in the assignment profile")
