"""Fig. 2's convergence curve: accuracy on a fixed, seeded subset of original test images
every cfg.curve_every optimizer steps, saved as curve.csv beside history.csv.

    from gandef_tf import curve
    cb = curve.StepCurve(cfg, test_data, start_step)   # training.train adds it to fit()
    rows = runs.read_csv(results_dir / "curve.csv")

The paper's Fig. 2 is about how accuracy on original images fluctuates during training;
one point per epoch (history.csv) cannot show that, so a run with curve_every > 0 also
records this finer curve. It monitors, it never steers: nothing is tuned on it (schedules
are chosen on the validation split), and the classifier is called with training=False,
so recording draws no random numbers and leaves training exactly as it would be without.
"""

import keras
import numpy as np
import tensorflow as tf

from gandef_tf import runs

FIELDS = ("step", "examples", "epoch", "test_accuracy")
SEED_OFFSET = 2000  # independent of the validation hold-out's and data.load's draws


def subset(cfg, test_data):
    """The cfg.curve_n test images the curve is scored on (all of them if fewer); the same
    for every method and seed of one data_seed, so their curves are comparable."""
    x, y = test_data
    n = min(cfg.curve_n, len(x))
    idx = np.sort(np.random.default_rng(cfg.data_seed + SEED_OFFSET).permutation(len(x))[:n])
    return x[idx], y[idx]


class StepCurve(keras.callbacks.Callback):
    """Scores the classifier every cfg.curve_every steps and writes curve.csv at each
    epoch's end, BEFORE RunCallback checkpoints (list it first): a run killed in between
    resumes from the older checkpoint and drops the rows past it, so the curve never holds
    a step that the checkpoint does not."""

    def __init__(self, cfg, test_data, start_step):
        super().__init__()
        self.cfg, self.path = cfg, runs.results_dir(cfg) / "curve.csv"
        self.rows = [r for r in runs.read_csv(self.path) if int(r["step"]) <= start_step]
        x, y = subset(cfg, test_data)
        self.batches = [(x[i:i + cfg.eval_batch_size], y[i:i + cfg.eval_batch_size])
                        for i in range(0, len(x), cfg.eval_batch_size)]
        self.n = len(x)

    def on_train_begin(self, logs=None):
        clf = self.model.classifier
        self.correct = tf.function(lambda x, y: tf.reduce_sum(tf.cast(
            tf.argmax(clf(x, training=False), -1, output_type=tf.int32) == tf.cast(y, tf.int32),
            tf.int32)))

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if step % self.cfg.curve_every == 0:
            hits = sum(int(self.correct(x, y)) for x, y in self.batches)
            self.rows.append({"step": step, "examples": step * self.cfg.batch_size,
                              "epoch": self.epoch + 1, "test_accuracy": f"{hits / self.n:.6g}"})

    def on_epoch_end(self, epoch, logs=None):
        runs.write_csv(self.path, FIELDS, self.rows)
