"""experiments.tf_log: a module's start-up writes to file descriptor 2 are kept off stderr
unless asked for, and a failed import still explains itself. A stand-in module that writes
to fd 2 as TensorFlow's C++ logging does replaces TensorFlow (fast, no TensorFlow import);
each case runs in a fresh interpreter because the hook acts on a module's first import."""

import os
import subprocess
import sys

import pytest

from conftest import REPO
from experiments import tf_log

NOISY = '''import os
os.write(2, b"I0000 00:00:1.0 port.cc:153] C++ start-up line\\n")
VALUE = 42
'''
BROKEN = NOISY + 'raise ImportError("libfoo.so: cannot open shared object file")\n'


def run(tmp_path, source, *argv, **env):
    """Imports the stand-in `source` after tf_log.install(), as experiments/__init__ does."""
    (tmp_path / "noisy_stand_in.py").write_text(source)
    code = ("import sys; from experiments import tf_log; tf_log.install('noisy_stand_in'); "
            "import noisy_stand_in; print(noisy_stand_in.VALUE, "
            "type(noisy_stand_in.__loader__).__name__); "
            "print('after import', file=sys.stderr)")
    environ = {k: v for k, v in os.environ.items() if k not in ("GANDEF_TF_LOG",)}
    environ.update(PYTHONPATH=os.pathsep.join([str(REPO), str(tmp_path)]), **env)
    return subprocess.run([sys.executable, "-c", code, *argv], cwd=tmp_path, env=environ,
                          capture_output=True, text=True, timeout=60)


def test_start_up_writes_to_fd2_are_hidden(tmp_path):
    out = run(tmp_path, NOISY)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["42", "SourceFileLoader"]  # its own loader, once imported
    assert out.stderr.splitlines() == ["after import"]  # stderr itself works again after


def test_the_env_var_shows_it(tmp_path):
    out = run(tmp_path, NOISY, GANDEF_TF_LOG="1")
    assert out.returncode == 0
    assert out.stderr.splitlines() == ["I0000 00:00:1.0 port.cc:153] C++ start-up line",
                                       "after import"]


def test_verbose_2_does_not(tmp_path):
    """make passes --verbose=2 (Keras: one line per epoch) to every run, for its logs."""
    out = run(tmp_path, NOISY, "--verbose=2")
    assert out.returncode == 0 and out.stderr.splitlines() == ["after import"]


def test_a_failed_import_shows_what_it_logged(tmp_path):
    out = run(tmp_path, BROKEN)
    assert out.returncode == 1
    assert "C++ start-up line" in out.stderr and "libfoo.so: cannot open" in out.stderr


@pytest.mark.parametrize("value,asked", [("1", True), ("yes", True), ("0", False), ("", False)])
def test_wanted_reads_the_env_var(value, asked):
    assert tf_log.wanted({"GANDEF_TF_LOG": value}) is asked
    assert tf_log.wanted({}) is False
