"""Runnable modules: `python -m experiments.<name> --help`."""

import logging
import os

from experiments import tf_log

# TensorFlow runs its oneDNN CPU kernels by default only on some CPUs; on an AVX2-only EPYC
# it does not, and there they make allCNN's PGD train step 1.2x as fast (docs/performance.md,
# "oneDNN"). Read once, at TensorFlow's import; a value set by the user is kept.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

# Before any experiment module imports TensorFlow: its C++ start-up logging would otherwise
# precede every command's output, a bad flag's one-line error included.
tf_log.install()
# Commands import TensorFlow (and through Keras, matplotlib) only once work starts, after
# absl has set up logging: matplotlib's INFO line about building its font cache (a new
# HOME) would then reach stderr.
logging.getLogger("matplotlib").setLevel(logging.WARNING)
