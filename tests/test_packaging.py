"""The distribution: built, checked, installed into a fresh venv, and the README's first command run from it.

A file missing from the sdist or the wheel (a subpackage, ``py.typed``, the license) fails here,
not on a user's machine; so does any warning the build or the install prints that is not on the
short allow-list below (the next deprecation is seen the day it appears).
"""

import re
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Warnings that are not ours: said by the tools about the machine, not about this project.
ALLOWED_WARNINGS = (
    re.compile(r"Location '.*' is ignored: it is neither a file nor a directory"),  # a pip.conf of this machine
    re.compile(r"You are using pip version"),
    re.compile(r"A new release of pip is available"),
    re.compile(r"Running pip as the 'root' user"),
    re.compile(r"byte-compiling is disabled, skipping"),  # PYTHONDONTWRITEBYTECODE in the environment
)


def _run(cmd, **kw) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{out[-4000:]}"
    return out


def _ours(output: str) -> list[str]:
    lines = [line for line in output.splitlines() if re.search(r"warn|deprecat", line, re.I)]
    return [line for line in lines if not any(p.search(line) for p in ALLOWED_WARNINGS)]


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    log = _run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)])  # the sdist, then the wheel from it
    assert not _ours(log), "the build warned:\n" + "\n".join(_ours(log))
    return out


def _package_files() -> set[str]:
    return {p.relative_to(ROOT).as_posix() for p in (ROOT / "gradverify").rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix in (".py", ".typed")}


@pytest.mark.slow
def test_the_sdist_and_the_wheel_hold_every_file_of_the_package_and_pass_twine_check(dist):
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    log = _run([sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdist)])
    assert log.count("PASSED") == 2
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        metadata = next(zf.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    assert _package_files() <= names, sorted(_package_files() - names)
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "License-Expression: MIT" in metadata and "\nLicense:" not in metadata
    from gradverify import __version__
    assert f"\nVersion: {__version__}\n" in metadata
    with tarfile.open(sdist) as tf:
        inner = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    assert _package_files() <= inner and {"LICENSE", "README.md", "pyproject.toml"} <= inner


@pytest.mark.slow
def test_the_wheel_installs_into_a_fresh_venv_without_warnings_and_runs_the_readmes_first_command(dist, tmp_path):
    (wheel,) = dist.glob("*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    log = _run([str(python), "-m", "pip", "install", str(wheel)])
    assert not _ours(log), "the install warned:\n" + "\n".join(_ours(log))
    out = _run([str(python), "-m", "gradverify", "verify"], cwd=tmp_path)  # not from the source tree
    assert out.strip().splitlines()[-1].startswith("PASS: backprop and numeric agree with the exact values on all 38 parameters")
    assert "2.146359815024e+00" in out
    version = _run([str(env_dir / "bin" / "gradverify"), "--version"]).strip()
    from gradverify import __version__
    assert version == f"gradverify {__version__}"
