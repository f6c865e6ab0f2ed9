"""Keep TensorFlow's C++ start-up logging off the command line's stderr.

TensorFlow 2.21 writes, while `import tensorflow` runs, "WARNING: All log messages before
absl::InitializeLog() ...", the oneDNN notice and the "Could not find cuda drivers" line
through absl's C++ logging, which ignores TF_CPP_MIN_LOG_LEVEL; later lines (cuInit,
cpu_feature_guard) do honour it. So a bad flag's one `error:` line came after six lines of
noise. install() (run by experiments/__init__.py, before any experiment imports
TensorFlow) sets TF_CPP_MIN_LOG_LEVEL=3 (unless set) and sends file descriptor 2 to a
temporary file for the duration of TensorFlow's import; a failed import replays it.
GANDEF_TF_LOG=1 leaves TensorFlow's logging as it is (TF_CPP_MIN_LOG_LEVEL, when set, is
always kept).
"""

import contextlib
import importlib.abc
import importlib.util
import os
import sys
import tempfile


def wanted(environ):
    """True when the user asked to see TensorFlow's own logging. Not --verbose=2: that is
    Keras's one line per epoch, which make passes to every run for its logs."""
    return environ.get("GANDEF_TF_LOG", "") not in ("", "0")


@contextlib.contextmanager
def stderr_fd_to_file():
    """Point file descriptor 2 (where C++ code writes) at a temporary file; yields it."""
    with tempfile.TemporaryFile() as tmp:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            yield tmp
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


class _QuietLoader(importlib.abc.Loader):
    """Runs a module's real loader with file descriptor 2 captured."""

    def __init__(self, real):
        self.real = real

    def create_module(self, spec):
        return self.real.create_module(spec)

    def exec_module(self, module):
        error = None
        with stderr_fd_to_file() as tmp:
            try:
                self.real.exec_module(module)
            except BaseException as e:
                error = e
                tmp.seek(0)
                captured = tmp.read()
        # The package keeps its own loader: importlib.resources and pkgutil ask it.
        module.__loader__ = module.__spec__.loader = self.real
        if error is not None:
            # A broken installation explains itself in what it logged: show it.
            sys.stderr.write(captured.decode(errors="replace"))
            raise error


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Intercepts the first import of one top-level module only, then steps aside."""

    def __init__(self, module):
        self.module = module

    def find_spec(self, name, path=None, target=None):
        if name != self.module:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def install(module="tensorflow"):
    """Quiet the first import of `module` (a parameter for the tests' stand-in)."""
    if wanted(os.environ) or module in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if not any(isinstance(f, _QuietFinder) and f.module == module for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietFinder(module))
