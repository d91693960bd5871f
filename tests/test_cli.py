"""The ``align3r`` entry point: argument errors in the subcommand's words, a closed stdout."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from align3r.cli import main


@pytest.mark.parametrize(("argv", "usage"), [
    (["prior", "frames", "--bogus"], "usage: align3r prior "),
    (["bench", "model", "--bogus"], "usage: align3r bench model "),
    (["checkpoints", "--bogus"], "usage: align3r checkpoints "),
])
def test_unknown_arguments_show_the_subcommands_usage(argv, usage, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(usage) and "COMMAND" not in err
    assert err.rstrip().endswith(f"align3r {' '.join(argv[:-2 if argv[0] == 'prior' else -1])}: error: "
                                 "unrecognized arguments: --bogus")


def test_a_closed_stdout_ends_quietly():
    """``align3r checkpoints | head -1``: no BrokenPipeError traceback."""
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line
    try:
        done = subprocess.run([sys.executable, "-m", "align3r", "checkpoints"], stdout=write,
                              stderr=subprocess.PIPE, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=120)
    finally:
        os.close(write)
    assert done.returncode == 1 and done.stderr == b""
