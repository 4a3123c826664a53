"""Every command's usage errors are one line and exit 2; a closed pipe ends the command quietly."""
import subprocess
import sys

import pytest

from mlpnumpy.cli.commands import main


@pytest.mark.parametrize("argv", [
    ["experiment", "nonsense"],
    ["experiment", "init", "--bogus"],
    ["experiment"],
    ["learn", "bogus"],
])
def test_subcommand_usage_errors_are_one_line_exit_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mlpnumpy") and "error: " in err, err
    assert "usage:" not in err


def test_experiment_help_still_prints_usage(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["experiment", "--help"])
    assert exc.value.code == 0 and "usage: mlpnumpy experiment" in capsys.readouterr().out


def test_a_closed_pipe_ends_quietly():
    # `mlpnumpy train --help | head -1`: the reader leaves after one line
    proc = subprocess.Popen([sys.executable, "-m", "mlpnumpy", "train", "--help"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    rc = proc.wait(timeout=60)
    assert "Error" not in err and "Traceback" not in err, err
    assert rc in (0, 141)


def test_no_quiet_turns_progress_back_on_when_resuming_a_quiet_run(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", "--epochs", "1", "--hidden", "8", "--quiet", "--out", str(out)]) == 0
    assert capsys.readouterr().out == ""
    assert main(["train", "--resume", str(out), "--epochs", "2", "--finetune", "--no-quiet"]) == 0
    assert "Test accuracy" in capsys.readouterr().out
