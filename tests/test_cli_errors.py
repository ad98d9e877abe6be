"""The CLI's error shape: every user error is one line on stderr and exit code 2, never a
traceback; a closed pipe ends the command quietly (issue 9 §2)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from core_engine.cli import main

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


def _one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("core-engine"), lines[0]
    assert "Traceback" not in captured.err
    return lines[0]


@pytest.mark.parametrize("argv", [
    ["backtest", "--max-positions", "three"],          # argparse: a bad int
    ["backtest", "--no-such-option"],                  # argparse: an unknown option
    ["frobnicate"],                                    # argparse: an unknown command
    [],                                                # argparse: no command
    ["backtest", "--stop-fill", "lowest"],             # argparse: a bad choice
    ["live", "status"],                                # argparse: a required option missing
])
def test_argparse_errors_are_one_line_and_exit_2(argv, capsys):
    assert main(argv) == 2
    _one_line_error(capsys)


def test_help_still_exits_zero(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    assert "core-engine" in capsys.readouterr().out


@pytest.mark.parametrize("action", ["halt", "flatten", "resume", "status"])
def test_live_operator_commands_refuse_a_missing_journal_and_create_nothing(action, tmp_path,
                                                                            capsys):
    journal = tmp_path / "nested" / "trader.sqlite"
    assert main(["live", action, "--journal", str(journal)]) == 2
    assert "does not exist" in _one_line_error(capsys)
    assert not journal.exists() and not journal.parent.exists()


@pytest.mark.parametrize("action", ["halt", "flatten", "resume", "status"])
def test_live_operator_commands_refuse_a_folder_as_journal(action, tmp_path, capsys):
    assert main(["live", action, "--journal", str(tmp_path)]) == 2
    assert "folder" in _one_line_error(capsys)
    assert list(tmp_path.iterdir()) == []


def test_a_file_given_as_store_is_one_line(tmp_path, capsys):
    a_file = tmp_path / "not-a-store.txt"
    a_file.write_text("x")
    assert main(["data", "info", "--store", str(a_file)]) == 2
    _one_line_error(capsys)


def test_a_bad_time_is_one_line(capsys):
    assert main(["backtest", "--start", "not-a-time", "--out", "-", "--symbols", "BTC/USDT"]) == 2
    _one_line_error(capsys)


def test_a_closed_pipe_ends_quietly():
    """``core-engine backtest ... | head -1``: the reader goes away after one line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "core_engine.cli", "data", "info", "--store",
         os.path.join(os.path.dirname(__file__), "no-such-store")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    proc.stdout.close()  # the reader is gone before the command writes
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert code == 141, (code, err)
