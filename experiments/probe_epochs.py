"""Epoch probes: one config trained for whole epochs, scored on held-out images after each.

    python -m experiments.probe_epochs --dataset=cifar10 --method=pure_pgd --epochs=10 \
        --name=pure_pgd.authors_code.adam --set=dropout=authors_code \
        --out=results/quick/cifar10/tuning/dropout_schedule.jsonl
    make probe-epochs       # issue 36's seven probes: experiments.probe_queues

After every epoch one JSON line goes to `--out` (the file is rewritten atomically; lines
of other probes are kept): accuracy on `--score_n` validation images (held-out training
images, never test images) on original examples and under PGD-1, in float32; accuracy on
the training attack's examples of `--train_n` fixed training images, generated as training
generates them (classifier in inference mode) and classified in inference mode (what
test-time PGD-1 measures) and in training mode (what fit()'s running accuracy measures,
dropout on), and the same on the validation images (the gap between the two is the
training attack's generalisation gap; the one between it and PGD-1, the attacks'
strength); fit()'s logs, the epoch's training seconds (summed over the processes that
trained it), every resume so far, the config, the overrides, the provenance.

The probe's state is checkpointed after every epoch, and every `--save_every` seconds
within one (an allCNN Pure PGD epoch takes hours on a host without AVX-512), under
$GANDEF_RUNS_DIR/probes/<dropout>/<name>/; re-running the same command resumes there: each
epoch's order is fixed by (seed, epoch), so a resumed epoch trains on the batches it had
not trained on yet. Rows in `--out` whose checkpoint is not here (another machine's) are
kept: a finished probe is reported, an unfinished one refused (restore its checkpoint, or
move its rows away to train it afresh). A config with `pretrain_epochs` starts from a
shared clean pre-training trained in $GANDEF_RUNS_DIR/probes/<dropout>/ (never results/:
its record there belongs to the committed runs), shared by every probe with the same
dropout.
"""

import contextlib
import fcntl
import json
import os
import time
from pathlib import Path

import numpy as np
from absl import flags

from experiments import cli
from experiments.probe import parse_overrides, score
from gandef_tf import GandefError, runs
from gandef_tf.config import DATASETS, METHODS, Config, get_config

FLAGS = flags.FLAGS
TRAIN_SUBSET_SEED = 2024  # the fixed training images whose attack accuracy is tracked


def probe_root(cfg):
    """Where a probe's checkpoints (and its shared pre-training) live."""
    return Path(os.environ.get("GANDEF_RUNS_DIR", "runs")) / "probes" / cfg.dropout


def train_attack_accuracy(trainer, x, y, batch=250):
    """Accuracy on the training attack's examples of (x, y), generated as train_step does,
    classified in inference mode and in training mode (dropout on)."""
    right_inf, right_train = [], []
    for i in range(0, len(x), batch):
        xb, yb = x[i:i + batch], y[i:i + batch]
        x_adv = trainer.adversarial(xb, yb)
        right_inf.append(np.argmax(trainer.classifier(x_adv, training=False).numpy(), 1) == yb)
        right_train.append(np.argmax(trainer.classifier(x_adv, training=True).numpy(), 1) == yb)
    return {"inference_mode": float(np.mean(np.concatenate(right_inf))),
            "training_mode": float(np.mean(np.concatenate(right_train)))}


def read_rows(out, name):
    """(this probe's rows, every other line) of the --out file."""
    mine, other = [], []
    if Path(out).exists():
        for line in Path(out).read_text().splitlines():
            if line.strip():
                (mine if json.loads(line).get("name") == name else other).append(line)
    return [json.loads(line) for line in mine], other


def write_rows(out, name, rows):
    """Replace this probe's rows in --out; probes running beside it write the same file,
    so the read and the rewrite happen under a lock."""
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with open(f"{out}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        other = read_rows(out, name)[1]
        lines = other + [json.dumps(dict(r, name=name), sort_keys=True) for r in rows]
        runs.atomic_write(out, "\n".join(lines) + "\n")


@contextlib.contextmanager
def _probe_dirs(root):
    """The shared pre-training's model and records go under root, never results/ (the
    committed runs' records); the environment is restored afterwards."""
    saved = {k: os.environ.get(k) for k in ("GANDEF_RUNS_DIR", "GANDEF_RESULTS_DIR")}
    os.environ.update(GANDEF_RUNS_DIR=str(root), GANDEF_RESULTS_DIR=str(root / "results"))
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run(cfg, name, overrides, out, score_n, train_n, verbose=2, save_every=600):
    root = probe_root(cfg)
    with _probe_dirs(root):
        return _run(cfg, root / name, overrides, out, score_n, train_n, verbose, save_every)


def epoch_batches(cfg, x, y, epoch, skip=0):
    """Epoch `epoch`'s training batches after its first `skip`: the order is a permutation
    fixed by (seed, epoch), so an epoch resumed mid-way trains on exactly the batches it had
    not trained on yet (fit()'s reshuffling stream could not tell which those were)."""
    import tensorflow as tf

    from gandef_tf import training

    order = np.random.default_rng([cfg.seed, epoch]).permutation(len(x))
    n = len(x) // cfg.batch_size * cfg.batch_size
    xs, ys = tf.constant(x), tf.constant(y)
    ds = tf.data.Dataset.from_tensor_slices(order[skip * cfg.batch_size:n])
    ds = ds.map(lambda i: (tf.gather(xs, i), tf.gather(ys, i)))
    if cfg.augment:
        ds = ds.map(training._augment, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(cfg.batch_size, drop_remainder=True)
    if cfg.is_gandef:
        disc = training._stream(x, y, cfg.batch_size * cfg.disc_steps,
                                cfg.seed + 10_000 + epoch, cfg.augment, repeat=True)
        ds = tf.data.Dataset.zip((ds, disc))
    return ds.prefetch(tf.data.AUTOTUNE)


def saved_rows(cfg, rdir, out):
    """The probe's rows in `out`, checked against cfg and against its checkpoint in rdir:
    rows beyond the checkpoint are another machine's run (or a lost one), which training
    afresh here would replace with another run's rows, so they are refused unless final."""
    name, saved = rdir.name, read_rows(out, rdir.name)[0]
    if saved and Config.from_dict(saved[-1]["config"]) != cfg:
        raise GandefError(f"probe {name!r} has rows in {out} made with another config; "
                          "choose another --name or move those rows away")
    if saved and cfg.epochs > saved[-1]["epoch"] > runs.checkpoint_epoch(rdir):
        raise GandefError(f"probe {name!r} has rows up to epoch {saved[-1]['epoch']} in {out} "
                          f"but {rdir} holds no checkpoint that far: restore its checkpoint, "
                          "or move its rows away to train it afresh")
    return saved


def _run(cfg, rdir, overrides, out, score_n, train_n, verbose, save_every):
    import keras

    from experiments.probe import start_trainer
    from gandef_tf import training

    name = rdir.name
    stored = rdir / "config.json"
    if stored.exists() and Config.from_dict(runs.read_json(stored)["config"]) != cfg:
        raise GandefError(f"probe {name!r} in {rdir} was started with another config; "
                          "choose another --name or move that folder away")
    saved = saved_rows(cfg, rdir, out)
    if saved and saved[-1]["epoch"] >= cfg.epochs:  # finished, here or on another machine
        print(f"probe {name}: all {cfg.epochs} epochs done ({out})")
        return saved
    runs.write_json(stored, {"config": cfg.to_dict(), "overrides": overrides,
                             **runs.provenance()})
    trainer = start_trainer(cfg)
    done, elapsed = runs.load_checkpoint(rdir, trainer)
    skip = runs.checkpoint_epoch(rdir, key="batch")
    rows = [r for r in saved if r["epoch"] <= done]
    x_val, y_val = training.load_validation(cfg)
    x_val, y_val = x_val[:score_n], y_val[:score_n]
    (x_tr, y_tr), _ = training.load_data(cfg)
    pick = np.sort(np.random.default_rng(TRAIN_SUBSET_SEED).choice(len(x_tr), train_n, False))
    x_sub, y_sub = x_tr[pick], y_tr[pick]
    # Kept beside the checkpoint, so that a process stopped before its epoch's row still
    # counts: every resume (a fraction within an epoch) and the training seconds summed
    # over every process at each epoch's end.
    progress_path = rdir / "progress.json"
    progress = runs.read_json(progress_path) if progress_path.exists() else {
        "resumed_after": rows[-1].get("resumed_after", []) if rows else [],
        "epoch_end_elapsed": {}}
    ends = progress["epoch_end_elapsed"]
    if done and not skip:  # the checkpoint loaded is epoch `done`'s end
        ends.setdefault(str(done), round(elapsed, 1))
    if (done or skip) and done < cfg.epochs:
        progress["resumed_after"].append(round(done + skip / (len(x_tr) // cfg.batch_size), 4))
    runs.write_json(progress_path, progress)

    def add_row(epoch, segment, logs):
        start = time.time()
        total, before = ends.get(str(epoch)), 0.0 if epoch == 1 else ends.get(str(epoch - 1))
        row = {"epoch": epoch, "step": int(trainer.optimizer.iterations.numpy()),
               # the epoch's training time over all its processes; segment: this one's
               "train_seconds": None if None in (total, before) else round(total - before, 1),
               "segment_seconds": segment and round(segment, 1), "elapsed_seconds": total,
               "train": {k: float(v) for k, v in (logs or {}).items()},
               "validation": score(trainer, cfg, x_val, y_val), "score_n": len(y_val),
               "train_attack": train_attack_accuracy(trainer, x_sub, y_sub),
               "train_n": len(y_sub),
               "validation_train_attack": train_attack_accuracy(trainer, x_val, y_val),
               "overrides": overrides, "config": cfg.to_dict(),
               "resumed_after": list(progress["resumed_after"]), **runs.provenance()}
        row["score_seconds"] = round(time.time() - start, 1)
        rows.append(row)
        write_rows(out, name, rows)
        print(json.dumps({"probe": name, "epoch": epoch, **row["validation"],
                          "train_attack": row["train_attack"], "s": row["train_seconds"]}),
              flush=True)

    if done and not skip and (not rows or rows[-1]["epoch"] < done):
        add_row(done, None, {})  # stopped while its epoch was being scored
    if done >= cfg.epochs:
        print(f"probe {name}: all {cfg.epochs} epochs done ({out})")
        return rows
    if done or skip:
        print(f"probe {name}: resuming after epoch {done}" + (f", batch {skip}" if skip else ""))

    class Checkpoints(keras.callbacks.Callback):
        """The epoch's checkpoint and row; mid-epoch, a checkpoint every save_every s."""

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch, self.start = epoch, time.time()
            self.saved = self.start

        def on_train_batch_end(self, batch, logs=None):
            if time.time() - self.saved >= save_every:
                runs.save_checkpoint(rdir, trainer, self.epoch,
                                     elapsed + time.time() - self.start, batch=skip + batch + 1)
                self.saved = time.time()

        def on_epoch_end(self, epoch, logs=None):
            nonlocal elapsed
            seconds = time.time() - self.start
            elapsed += seconds
            runs.save_checkpoint(rdir, trainer, epoch + 1, elapsed)
            ends[str(epoch + 1)] = round(elapsed, 1)
            runs.write_json(progress_path, progress)
            add_row(epoch + 1, seconds, logs)

    for epoch in range(done, cfg.epochs):
        # a resumed epoch draws its random starts and augmentation afresh
        keras.utils.set_random_seed(cfg.seed + 1000 * epoch + skip)
        trainer.fit(epoch_batches(cfg, x_tr, y_tr, epoch, skip), epochs=epoch + 1, shuffle=False,
                    initial_epoch=epoch, verbose=verbose,
                    callbacks=[keras.callbacks.TerminateOnNaN(), Checkpoints()]
                    + training.schedule_callbacks(cfg))
        if trainer.stop_training:
            raise GandefError(f"probe {name}: a non-finite loss in epoch {epoch + 1}; kept "
                              f"the checkpoint of epoch {runs.checkpoint_epoch(rdir)}")
        skip = 0
    return rows


def define_scoring_flags(out, threads):
    """The flags of a probe's rows, scoring and checkpoints (experiments.probe_queues too)."""
    flags.DEFINE_string("out", out, "The .jsonl file of per-epoch rows.")
    flags.DEFINE_integer("score_n", 1000, "Validation images scored after each epoch.")
    flags.DEFINE_integer("train_n", 1000, "Training images whose attack accuracy is tracked.")
    flags.DEFINE_integer("verbose", 2, "fit() verbosity.")
    flags.DEFINE_integer("threads", threads, "TensorFlow threads (0: all cores).")
    flags.DEFINE_integer("save_every", 600, "Seconds between mid-epoch checkpoints.")


def main(argv):
    cli.set_threads(FLAGS.threads)
    overrides = parse_overrides(FLAGS.set)
    overrides["epochs"] = FLAGS.epochs
    cfg = get_config(FLAGS.preset, FLAGS.dataset, FLAGS.method, FLAGS.seed, **overrides)
    if not cfg.n_val:
        raise GandefError("a probe scores held-out training images: this config has n_val = 0;"
                          " add --set=n_val=5000")
    if not FLAGS.out or not FLAGS.name:
        raise GandefError("--out (a .jsonl file) and --name (this probe's name) are required")
    if not all(c.isalnum() or c in "._-" for c in FLAGS.name):
        raise GandefError(f"--name may hold letters, digits, '.', '_' and '-', got {FLAGS.name!r}")
    if not 1 <= FLAGS.score_n <= cfg.n_val or FLAGS.train_n < 1:
        raise GandefError(f"--score_n must be in [1, {cfg.n_val}] and --train_n >= 1")
    run(cfg, FLAGS.name, overrides, FLAGS.out, FLAGS.score_n, FLAGS.train_n, FLAGS.verbose,
        FLAGS.save_every)


if __name__ == "__main__":
    flags.DEFINE_enum("preset", "quick", ["paper", "quick", "smoke"], "Preset.")
    flags.DEFINE_enum("dataset", "cifar10", DATASETS, "Dataset.")
    flags.DEFINE_enum("method", "pure_pgd", METHODS, "Method.")
    flags.DEFINE_integer("seed", 0, "Training seed.")
    flags.DEFINE_integer("epochs", 10, "Adversarial (method) epochs.")
    flags.DEFINE_multi_string("set", [], "Config override field=value (tuples: a:b).")
    flags.DEFINE_string("name", None, "The probe's name (its checkpoint folder and rows).")
    define_scoring_flags(out=None, threads=0)
    cli.run(main)
