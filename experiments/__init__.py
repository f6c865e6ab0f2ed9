"""Runnable modules: `python -m experiments.<name> --help`."""

import logging

from experiments import tf_log

# Before any experiment module imports TensorFlow: its C++ start-up logging would otherwise
# precede every command's output, a bad flag's one-line error included.
tf_log.install()
# Commands import TensorFlow (and through Keras, matplotlib) only once work starts, after
# absl has set up logging: matplotlib's INFO line about building its font cache (a new
# HOME) would then reach stderr.
logging.getLogger("matplotlib").setLevel(logging.WARNING)
