"""progress_bar: silent when disabled or unattended, counting items either way."""

from __future__ import annotations

import io

import pytest

from core_engine import progress as progress_mod
from core_engine.progress import progress_bar, progress_enabled


def test_disabled_bar_prints_nothing_and_counts(capfd):
    bar = progress_bar(iter(range(7)), desc="work", enabled=False)
    assert list(bar) == list(range(7))
    assert bar.n == 7 and bar.total is None
    sized = progress_bar([1, 2, 3], enabled=False)
    assert sized.total == 3 and len(sized) == 3
    with progress_bar(total=10, enabled=False) as manual:
        manual.update(4)
        manual.set_postfix(x=1)
    assert manual.n == 4
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_enabled_bar_writes_and_counts(capsys):
    bar = progress_bar(range(5), desc="symbols", enabled=True, mininterval=0)
    assert list(bar) == [0, 1, 2, 3, 4]
    assert bar.n == 5
    err = capsys.readouterr().err
    assert "symbols" in err and "5/5" in err


def test_enabled_bar_to_a_given_file():
    sink = io.StringIO()
    with progress_bar(total=3, desc="manual", enabled=True, file=sink, mininterval=0) as bar:
        for _ in range(3):
            bar.update()
    assert bar.n == 3 and "3/3" in sink.getvalue()


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.mark.parametrize(("tty", "ci", "expected"), [
    (True, None, True), (False, None, False), (True, "true", False), (True, "1", False),
    (True, "0", True), (True, "false", True), (True, "", True),
])
def test_automatic_mode_follows_tty_and_ci(monkeypatch, tty, ci, expected):
    monkeypatch.setattr(progress_mod.sys, "stderr", _Stream(tty))
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    assert progress_enabled(None) is expected
    assert progress_enabled(True) is True and progress_enabled(False) is False


def test_automatic_mode_is_silent_without_a_terminal(monkeypatch):
    stream = _Stream(False)
    monkeypatch.setattr(progress_mod.sys, "stderr", stream)
    monkeypatch.delenv("CI", raising=False)
    bar = progress_bar(range(4), desc="quiet")
    assert sum(bar) == 6 and bar.n == 4
    assert stream.getvalue() == ""


def test_automatic_mode_shows_on_a_terminal(monkeypatch):
    stream = _Stream(True)
    monkeypatch.setattr(progress_mod.sys, "stderr", stream)
    monkeypatch.delenv("CI", raising=False)
    bar = progress_bar(range(4), desc="loud", mininterval=0)
    assert list(bar) == [0, 1, 2, 3]
    assert "loud" in stream.getvalue() and "4/4" in stream.getvalue()


def test_silent_bar_without_iterable_cannot_iterate():
    bar = progress_bar(total=2, enabled=False)
    with pytest.raises(TypeError, match="nothing to iterate"):
        list(bar)
    with pytest.raises(TypeError, match="length is unknown"):
        len(progress_bar(iter([1]), enabled=False))


def test_walk_forward_stage_bar_is_shown_only_when_asked(capsys, make_candles):
    from core_engine.backtest import walk_forward
    from core_engine.data import Panel

    panel = Panel.from_frames({f"S{i}": make_candles(400, seed=i) for i in range(3)}, "5m")
    walk_forward(panel, "momentum_rank")
    assert capsys.readouterr().err == ""
    walk_forward(panel, "momentum_rank", progress=True, audit=1)
    err = capsys.readouterr().err
    assert "walk_forward:" in err and "/5 [" in err  # five stages with the audit


def test_a_bar_nobody_watches_does_not_import_tqdm():
    """A silent run (CI, a pipe, enabled=False) does not pay tqdm's import (cold start, W10)."""
    import subprocess
    import sys

    code = ("import sys; from core_engine.progress import progress_bar; "
            "bar = progress_bar(range(3), enabled=False); assert list(bar) == [0, 1, 2]; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'tqdm'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120)
    assert done.stdout.strip() == "[]"
