"""gandef_tf: a TensorFlow 2 / Keras reproduction of GanDef (Liu, Khalil, Khreishah).

    from gandef_tf import config, data, models
    cfg = config.get_config("smoke", "mnist", "gandef")
    (x_tr, y_tr), (x_te, y_te) = data.load("mnist")
    clf = models.build_classifier("mnist")
"""

__version__ = "0.1.0"


class GandefError(Exception):
    """A user-facing error: the CLI prints its message on one line and exits non-zero."""
