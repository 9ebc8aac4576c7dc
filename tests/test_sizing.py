"""Runs are sized before anything is allocated: refusals say what fits instead; long runs show progress.

The estimates are formulas (``gradverify.sizing``); these tests check what they promise — that a
run over the machine's memory is refused before it allocates (with an alternative that really
fits), that an ``.npz`` is judged by its headers before it is loaded, and that progress reaches a
log that is not a terminal — not that they are accurate to a percent.
"""

import io
import resource
import time
import zipfile

import numpy as np
import pytest

from gradverify import sizing
from gradverify.cli import main
from gradverify.cli._common import Heartbeat, Progress
from gradverify.errors import InputError
from gradverify.spec import parse_spec

GB = 10**9


def _refusal(argv, capsys) -> str:
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.monotonic()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert time.monotonic() - start < 10 and "Traceback" not in err
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0 < 200_000  # kB: nothing big was allocated
    assert "nothing was computed" in err or "nothing was loaded" in err
    return err


@pytest.mark.parametrize("argv, fix", [
    (["verify", "100000-100000-10"], "a smaller network"),
    (["verify", "10000-10000-10"], "--sources backprop,numeric"),
    (["verify", "-m", "100000000"], "a smaller batch (-m"),
])
def test_a_run_over_the_machines_memory_is_refused_before_it_allocates(argv, fix, capsys, monkeypatch):
    monkeypatch.setattr(sizing, "available_memory", lambda: 24 * GB)  # this project's machine, the same verdict on any
    err = _refusal(argv, capsys)
    assert "of memory, more than the" in err and fix in err


def test_the_alternatives_offered_in_a_refusal_really_fit():
    net = parse_spec("400-25-10")
    est = sizing.estimate(net, 200_000, ("exact", "backprop", "numeric"), available=8 * GB)
    with pytest.raises(InputError) as info:
        est.check()
    text = str(info.value)
    sources = tuple(text.split("--sources ")[1].split()[0].split(","))
    assert sources and "exact" not in sources
    assert sizing.estimate(net, 200_000, sources, available=8 * GB).fits()
    m_fit = int(text.split("(-m ")[1].split(" fits")[0].replace(",", ""))
    assert sizing.estimate(net, m_fit, ("exact", "backprop", "numeric"), available=8 * GB).fits()
    assert not sizing.estimate(net, m_fit + 1, ("exact", "backprop", "numeric"), available=8 * GB).fits()


def test_unknown_memory_refuses_nothing():
    assert sizing.estimate(parse_spec("100000-100000-10"), 5, ("backprop",), available=None).fits()


def test_estimates_grow_with_the_problem_and_choose_sampling_for_slow_finite_differences():
    small = sizing.estimate(parse_spec("3-5-3"), 5, ("exact", "backprop", "numeric"), available=None)
    big = sizing.estimate(parse_spec("256-256-256-256-256-10"), 5, ("exact", "backprop", "numeric"), available=None)
    assert small.peak_bytes < big.peak_bytes and small.seconds < big.seconds
    assert small.fd.kind == "full" and big.fd.kind == "sample" and big.fd.n < big.network.n_params
    assert sizing.fd_plan(parse_spec("256-256-256-256-256-10"), 5, fd="full").kind == "full"
    assert sizing.fd_plan(parse_spec("3-5-3"), 5, fd="sample", sample=10).n == 10


def _bomb(path, shape=(200_000, 200_000)):
    """An .npz whose header promises a huge array (320 GB of float64) in a few hundred bytes."""
    header = {"descr": "<f8", "fortran_order": False, "shape": shape}
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("W1.npy", buf.getvalue() + b"\0" * 1000)
        zf.writestr("X.npy", buf.getvalue())


def test_an_npz_whose_arrays_would_expand_past_memory_is_refused_from_its_headers(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sizing, "available_memory", lambda: 16 * GB)
    _bomb(tmp_path / "bomb.npz")
    assert (tmp_path / "bomb.npz").stat().st_size < 5000
    err = _refusal(["verify", "--npz", str(tmp_path / "bomb.npz")], capsys)
    assert "once loaded" in err and "nothing was loaded" in err


def test_an_npz_of_a_network_too_big_to_verify_is_refused_before_loading(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sizing, "available_memory", lambda: 4 * GB)  # the same verdict on any machine
    m = 20_000  # 3 MB of X: loads easily, but the exact oracle's values for 20,000 examples of 1000 units would not fit
    np.savez(tmp_path / "wide.npz", W1=np.zeros((1000, 20)), b1=np.zeros(1000), W2=np.zeros((10, 1000)), b2=np.zeros(10),
             X=np.zeros((m, 20)), y=np.zeros(m, dtype=int))
    err = _refusal(["verify", "--npz", str(tmp_path / "wide.npz")], capsys)
    assert "--sources backprop,numeric" in err


def test_progress_on_a_non_terminal_is_a_line_every_few_seconds():
    stream = io.StringIO()
    bar = Progress("numeric", delay=0.0, stream=stream, interval=0.05, unit="partials")
    for done in range(0, 101, 10):
        bar(done, 100)
        time.sleep(0.02)
    lines = stream.getvalue().splitlines()
    assert 2 <= len(lines) <= 8 and all(line.startswith("gradverify: numeric ") for line in lines)
    assert "partials" in lines[0] and "elapsed" in lines[0] and "\r" not in stream.getvalue()


def test_a_long_step_without_progress_still_says_it_is_running(capfd):
    with Heartbeat("verify", interval=0.2, estimate=30):
        end = time.monotonic() + 0.9
        while time.monotonic() < end:  # busy, like a source that reports nothing
            sum(range(1000))
    err = capfd.readouterr().err
    assert "gradverify: verify still running" in err and "estimated 30 s in all" in err
