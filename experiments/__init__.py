"""Runnable modules: `python -m experiments.<name> --help`."""

from experiments import tf_log

# Before any experiment module imports TensorFlow: its C++ start-up logging would otherwise
# precede every command's output, a bad flag's one-line error included.
tf_log.install()
