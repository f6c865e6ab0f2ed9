"""Train one run with fit(), checkpointing every epoch and resuming after an interruption.

    from gandef_tf.config import get_config
    from gandef_tf.training import train
    classifier, discriminator, seconds = train(get_config("smoke", "mnist", "gandef"))

A finished run is reused (its classifier.keras / discriminator.keras are loaded); a run
that stopped mid-way resumes from its last finished epoch; divergence (a NaN/Inf loss or
weights) stops training with an error and keeps the last good checkpoint.
"""

import dataclasses
import math
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from gandef_tf import GandefError, curve, data, runs
from gandef_tf import committed as committed_models
from gandef_tf.attacks import spec_for
from gandef_tf.config import deviations, precision_note, pretrain_config
from gandef_tf.methods import build_trainer
from gandef_tf.models import float32_copy

# test_* are on test images when a run holds out no validation images (n_val = 0), and
# val_* on the held-out training images otherwise (then test_* stay empty).
HISTORY_FIELDS = ("epoch", "loss", "accuracy", "d_loss", "d_accuracy", "test_loss",
                  "test_accuracy", "val_loss", "val_accuracy", "seconds")
VAL_SEED_OFFSET = 1000  # the hold-out draw is independent of data.load's subset draws
# An epoch's training accuracy at most this many times chance counts as "at chance": a
# dead network predicts one class, whose share of the data is chance give or take a bit.
CHANCE_MARGIN = 1.2


def _split(cfg):
    (x, y), test = data.load(cfg.dataset, n_train=cfg.n_train, n_test=cfg.n_test,
                             seed=cfg.data_seed)
    if not cfg.n_val:
        return (x, y), None, test
    if cfg.n_val >= len(x):
        raise GandefError(f"n_val={cfg.n_val} leaves no training images of {len(x)}")
    perm = np.random.default_rng(cfg.data_seed + VAL_SEED_OFFSET).permutation(len(x))
    val, keep = np.sort(perm[:cfg.n_val]), np.sort(perm[cfg.n_val:])
    return (x[keep], y[keep]), (x[val], y[val]), test


def load_data(cfg):
    """(train, test): the training images minus the cfg.n_val held out for validation."""
    train_data, _, test = _split(cfg)
    return train_data, test


def load_validation(cfg):
    """The cfg.n_val training images held out from training (tuning probes score these)."""
    _, val, _ = _split(cfg)
    if val is None:
        raise GandefError("this config holds out no validation images (n_val = 0)")
    return val


def _augment(x, y):
    """Madry's CIFAR-10 augmentation of ONE image: zero-pad 4, random 32x32 crop, random
    flip (mapped before batching, so every image gets its own offset and flip)."""
    x = tf.image.resize_with_crop_or_pad(x, 40, 40)
    x = tf.image.random_crop(x, [32, 32, 3])
    return tf.image.random_flip_left_right(x), y


def _stream(x, y, batch, seed, augment, repeat=False):
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed)
    ds = ds.repeat() if repeat else ds
    ds = ds.map(_augment, num_parallel_calls=tf.data.AUTOTUNE) if augment else ds
    return ds.batch(batch, drop_remainder=True)


def make_datasets(cfg, train_data, test_data):
    """(train, test) tf.data pipelines; GanDef's train batches carry an independent stream
    of k batches for the discriminator steps (Algorithm 1: freshly sampled). `test_data`
    is whatever fit() reports after each epoch (the validation split when there is one)."""
    (x, y), (x_te, y_te) = train_data, test_data
    if len(x) < cfg.batch_size * cfg.disc_steps:
        raise GandefError(f"{len(x)} training examples are fewer than one batch")
    train = _stream(x, y, cfg.batch_size, cfg.seed, cfg.augment)
    if cfg.is_gandef:
        disc = _stream(x, y, cfg.batch_size * cfg.disc_steps, cfg.seed + 10_000, cfg.augment,
                       repeat=True)
        train = tf.data.Dataset.zip((train, disc))
    test = tf.data.Dataset.from_tensor_slices((x_te, y_te)).batch(cfg.eval_batch_size)
    return train.prefetch(tf.data.AUTOTUNE), test.prefetch(tf.data.AUTOTUNE)


class EpsRamp(keras.callbacks.Callback):
    """Grows the training attack's eps (and step) linearly to its full value over the
    first cfg.eps_ramp_steps optimizer steps, in `stages` steps; each stage retraces the
    train step because CleverHans takes eps as a Python number."""

    def __init__(self, cfg, stages=10):
        super().__init__()
        self.cfg, self.stages, self.stage = cfg, stages, None

    def on_train_batch_begin(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        stage = min(self.stages, step * self.stages // self.cfg.eps_ramp_steps + 1)
        if stage != self.stage:
            self.stage = stage
            full = spec_for(self.cfg, self.cfg.train_attack)
            frac = stage / self.stages
            self.model.attack_spec = dataclasses.replace(
                full, eps=full.eps * frac, eps_iter=full.eps_iter and full.eps_iter * frac)
            self.model.make_train_function(force=True)


def schedule_callbacks(cfg):
    """The callbacks that are part of cfg's training itself (not its bookkeeping); runs and
    probes both use them, so that a probe trains as its run would."""
    return [EpsRamp(cfg)] if cfg.eps_ramp_steps else []


class RunCallback(keras.callbacks.Callback):
    """Per epoch: history row, checkpoint, atomically. Divergence (a non-finite loss, or
    non-finite weights after a step) stops before saving; an epoch at chance warns."""

    def __init__(self, cfg, rdir, rows, elapsed):
        super().__init__()
        self.cfg, self.rdir, self.rows, self.elapsed = cfg, rdir, rows, elapsed
        self.diverged = None  # (epoch, batch, what), 1-based
        self.warned_chance = False

    def on_train_begin(self, logs=None):
        floats = [w for w in self.model.weights if "float" in str(w.dtype)]
        # A too-large update leaves Inf/NaN weights after a step whose loss was finite; the
        # next step's attack would then fail on NaN inputs, so every step is checked (one
        # fused reduction, cheap beside a training step).
        self.weights_finite = tf.function(
            lambda: tf.reduce_all([tf.reduce_all(tf.math.is_finite(w)) for w in floats]))

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.start = epoch, time.time()

    def on_train_batch_end(self, batch, logs=None):
        if self.diverged is not None:
            return
        logs = {k: float(v) for k, v in (logs or {}).items()}
        bad = [f"{k} = {v}" for k, v in logs.items() if not math.isfinite(v)]
        if not bad and not bool(self.weights_finite()):
            bad = ["non-finite weights after a step with loss = "
                   f"{logs.get('loss', float('nan')):.4g}"]
        if bad:
            self.diverged = (self.epoch + 1, batch + 1, bad[0])
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.diverged is not None:
            return
        self.warn_at_chance(epoch, logs or {})
        seconds = time.time() - self.start
        self.elapsed += seconds
        logs = dict(logs or {})
        row = {k: logs.get(k, "") for k in ("loss", "accuracy", "d_loss", "d_accuracy")}
        on = "val" if self.cfg.n_val else "test"  # what fit()'s validation_data was
        row.update({"epoch": epoch + 1, f"{on}_loss": logs.get("val_loss", ""),
                    f"{on}_accuracy": logs.get("val_accuracy", ""), "seconds": round(seconds, 2)})
        row.update({k: "" for k in ("test_loss", "test_accuracy", "val_loss", "val_accuracy")
                    if k not in row})
        self.rows.append({k: _fmt(v) for k, v in row.items()})
        runs.save_checkpoint(self.rdir, self.model, epoch + 1, self.elapsed)
        write_history(self.cfg, self.rows)


    def warn_at_chance(self, epoch, logs):
        """One line, once: a network that died (as a huge learning rate leaves it, weights
        finite) trains on at chance without any error."""
        chance = 1 / self.model.classifier.output_shape[-1]
        acc = logs.get("accuracy")
        if acc is not None and not self.warned_chance and float(acc) <= CHANCE_MARGIN * chance:
            self.warned_chance = True
            print(f"[{self.cfg.preset}] warning: training accuracy {float(acc):.1%} sat at chance "
                  f"({chance:.0%}) for the whole of epoch {epoch + 1}: the network may have "
                  "stopped learning (a too-large learning rate does this)", file=sys.stderr)


def _fmt(v):
    return f"{float(v):.6g}" if v != "" else ""


def write_history(cfg, rows):
    runs.write_csv(runs.results_dir(cfg) / "history.csv", HISTORY_FIELDS, rows)


def load_finished(cfg, committed=True):
    """(classifier, discriminator or None, train_seconds) of a finished run, else None;
    with committed, the models committed beside its results when its run folder has none."""
    rdir = runs.run_dir(cfg)
    done = rdir / "train.json"
    if not done.exists():
        return committed_models.load(cfg) if committed else None
    try:
        clf = keras.models.load_model(rdir / "classifier.keras")
        disc = keras.models.load_model(rdir / "discriminator.keras") if cfg.is_gandef else None
    except Exception as e:
        raise GandefError(f"cannot load the finished models in {rdir} ({e})") from None
    return float32_copy(clf), disc and float32_copy(disc), runs.read_json(done)["train_seconds"]


def get_strategy(name="default"):
    """tf.distribute's strategy: 'mirrored' = data-parallel on every local GPU (or every
    logical CPU device); 'default' = one device. Batches stay global (cfg.batch_size)."""
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "default":
        return tf.distribute.get_strategy()
    raise GandefError(f"unknown strategy {name!r}; choose default or mirrored")


def train(cfg, verbose=1, strategy="default", stop_after=None):
    """Train (or resume, or reuse) the run of cfg; returns (classifier, discriminator, s).
    With cfg.pretrain_epochs, a fresh run starts from the shared pre-training's classifier
    (trained first if missing: a committed one is reproduced by the commands before they
    call this, experiments.reproduce.pretraining) with fresh optimizers; s excludes the
    pre-training. The run is held (runs.hold) meanwhile; a shared pre-training held
    elsewhere is waited for. stop_after=k ends after epoch k's checkpoint, unfinished, and
    returns None: a reproduction repeats a run that was interrupted there
    (experiments.reproduce)."""
    with runs.hold(runs.run_dir(cfg), wait=cfg.tag == "pretrain"):
        return _train(cfg, verbose, strategy, stop_after)


def _train(cfg, verbose, strategy, stop_after=None):
    rdir = runs.prepare(cfg)
    finished = load_finished(cfg)
    if finished:
        return finished
    start_epoch = runs.checkpoint_epoch(rdir)
    pre, pre_info = pretrain_config(cfg), None
    if pre is not None and start_epoch == 0:
        pre_clf, _, pre_seconds = train(pre, verbose=verbose, strategy=strategy)
        pre_weights = pre_clf.get_weights()
        pre_info = {"run": str(runs.results_dir(pre)), "epochs": pre.epochs,
                    "seconds": round(pre_seconds, 1),
                    **({"reproduced": True} if (runs.run_dir(pre) / "reproduced.json").exists()
                       else {})}
    for line in deviations(cfg):
        print(f"[{cfg.preset}] deviation from the paper: {line}")
    if precision_note(cfg):
        print(precision_note(cfg))
    keras.utils.set_random_seed(cfg.seed)
    with get_strategy(strategy).scope():  # variables (optimizers' too) made in scope
        trainer = build_trainer(cfg)
        start_epoch, elapsed = runs.load_checkpoint(rdir, trainer)
        start_step = int(trainer.optimizer.iterations.numpy())
        if pre_info is not None and start_epoch == 0:
            trainer.classifier.set_weights(pre_weights)
    train_data, test_data = load_data(cfg)
    train_ds, test_ds = make_datasets(cfg, train_data,
                                      load_validation(cfg) if cfg.n_val else test_data)
    rows = [r for r in runs.read_csv(runs.results_dir(cfg) / "history.csv")
            if int(r["epoch"]) <= start_epoch]
    info_path = runs.results_dir(cfg) / "config.json"
    before = runs.read_json(info_path) if info_path.exists() and start_epoch else {}
    if pre_info is None and pre is not None:  # resumed: keep the record
        pre_info = before.get("pretrain")
    # A resumed epoch draws its data order and random starts afresh, so repeating the run
    # (experiments.reproduce) needs to know after which epochs it was resumed.
    resumed = before.get("resumed_after", []) + [start_epoch] if start_epoch else []
    runs.write_json(info_path,
                    {"config": cfg.to_dict(), "deviations": deviations(cfg), "strategy": strategy,
                     **({"pretrain": pre_info} if pre_info else {}),
                     **({"resumed_after": resumed} if resumed else {}), **runs.provenance()})
    callback = RunCallback(cfg, rdir, rows, elapsed)
    # The curve is written before the checkpoint each epoch (curve.StepCurve says why).
    callbacks = ([curve.StepCurve(cfg, test_data, start_step)] if cfg.curve_every else []) + [
        callback] + schedule_callbacks(cfg)
    last = min(cfg.epochs, stop_after or cfg.epochs)
    if start_epoch < last:
        if start_epoch:
            print(f"[{cfg.preset}] resuming {rdir} from epoch {start_epoch}")
        trainer.fit(train_ds, epochs=last, initial_epoch=start_epoch, shuffle=False,
                    validation_data=test_ds, callbacks=callbacks, verbose=verbose)
    if callback.diverged:
        (epoch, batch, what), kept = callback.diverged, runs.checkpoint_epoch(rdir)
        raise GandefError(f"training diverged at epoch {epoch}, batch {batch} ({what}); " + (
            f"kept the checkpoint of epoch {kept} in {rdir}" if kept else
            f"no epoch had finished, so {rdir} holds no checkpoint"))
    if last < cfg.epochs:
        return None
    disc = getattr(trainer, "discriminator", None)
    for name, model in (("classifier", trainer.classifier), ("discriminator", disc)):
        if model is not None:
            tmp = rdir / f"{name}.tmp.keras"
            model.save(tmp)
            tmp.replace(rdir / f"{name}.keras")
    runs.write_json(rdir / "train.json", {"train_seconds": callback.elapsed, "epochs": cfg.epochs})
    # Whatever trained them, the returned models (for evaluation) compute in float32.
    return float32_copy(trainer.classifier), disc and float32_copy(disc), callback.elapsed
