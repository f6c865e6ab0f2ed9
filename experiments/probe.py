"""Short training probes: schedules are tuned on held-out training images, never on test.

    python -m experiments.probe --preset=quick --dataset=cifar10 --method=mix_pgd \
        --set=lr=3e-4 --steps=300 --points=3 --out=results/quick/cifar10/tuning/probes.jsonl
    python -m experiments.probe --preset=quick --dataset=cifar10 --method=pure_pgd \
        --init_from=$GANDEF_RUNS_DIR/quick/cifar10/pure_pgd/seed0 --set=lr=1e-4 --steps=1404 \
        --points=4 --out=results/quick/cifar10/tuning/continue_epochs.jsonl
    python -m experiments.probe --preset=paper --paper_check     # figures/paper/probe.json

A tuning probe trains one config (preset values, then `--set` overrides) for `--steps`
optimizer steps, from the shared pre-training when the config has one, and at `--points`
evenly spaced steps scores `--score_n` validation images (the config's n_val held-out
training images; `--set=n_val=5000` adds a hold-out to a preset without one) in
float32: accuracy on original and PGD-1 examples and, for GanDef, the discriminator's
loss, accuracy and logit percentiles on both. One JSON line per point is appended to
`--out`, with the config, the overrides, the seconds and the provenance.

`--init_from=RUN_FOLDER` starts from a finished run's classifier instead (fresh
optimizer; "would more epochs, or a lower learning rate at the end, have helped?"): the
run must have held out the same validation images (same dataset, n_train, n_val,
data_seed), and the starting point is scored too (step 0).

`--paper_check` runs every paper config for `--steps` steps on real data and writes
{dataset: {method: {steps, first_loss, last_loss, test_accuracy}}} (accuracy on 500
original test images): it says whether a paper config learns at all, nothing more.
"""

import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np
from absl import flags

from experiments import cli
from gandef_tf import GandefError, runs
from gandef_tf.attacks import make_attack, spec_for
from gandef_tf.config import DATASETS, METHODS, Config, get_config
from gandef_tf.models import float32_copy
from gandef_tf.scoring import comb_correct

FLAGS = flags.FLAGS
PERCENTILES = (5, 50, 95)


def parse_overrides(items):
    """['lr=3e-4', 'gandef_loss=authors_code'] -> typed {field: value} of Config."""
    types = {f.name: f.type for f in dataclasses.fields(Config)}
    out = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or key not in types:
            raise GandefError(f"--set takes field=value with a Config field, got {item!r}")
        kind = str(types[key])
        try:
            if kind in ("int", "<class 'int'>"):
                out[key] = int(text)
            elif kind in ("float", "<class 'float'>"):
                out[key] = float(text)
            elif kind in ("tuple", "<class 'tuple'>"):
                out[key] = tuple(float(v) if "." in v or "e" in v else int(v)
                                 for v in text.split(":") if v)
            elif kind in ("bool", "<class 'bool'>"):
                out[key] = text.lower() in ("1", "true", "yes")
            elif "Optional[int]" in kind:
                out[key] = None if text == "None" else int(text)
            else:
                out[key] = text
        except ValueError:
            raise GandefError(f"--set {key}: cannot read {text!r} as {kind}") from None
    return out


def score(trainer, cfg, x, y):
    """Float32 accuracies (and D's statistics for GanDef) on x, y; the trainer's
    precision does not leak into the numbers."""
    import tensorflow as tf

    from gandef_tf import losses

    clf = float32_copy(trainer.classifier)
    disc = getattr(trainer, "discriminator", None)
    disc = disc and float32_copy(disc)
    attack = make_attack(clf, spec_for(cfg, "pgd1"))
    z_o, z_a = [], []
    for i in range(0, len(x), cfg.eval_batch_size):
        xb, yb = x[i:i + cfg.eval_batch_size], y[i:i + cfg.eval_batch_size]
        z_o.append(clf(xb, training=False).numpy())
        z_a.append(clf(attack(xb, yb), training=False).numpy())
    z_o, z_a = np.concatenate(z_o), np.concatenate(z_a)
    out = {"original": float(np.mean(z_o.argmax(1) == y)),
           "pgd1": float(np.mean(z_a.argmax(1) == y)),
           "max_logit_median": float(np.median(z_o.max(1)))}
    if cfg.precision != "float32":  # is the training-precision attack as strong? (docs/performance.md)
        out["pgd1_in_training_precision"] = _accuracy_in(cfg, clf, x, y)
    if disc is not None:
        d_o, d_a = (disc(z, training=False).numpy()[:, 0] for z in (z_o, z_a))
        d_loss = losses.discriminator_loss(tf.constant(d_o), tf.constant(d_a), cfg.gandef_loss)
        p_o, p_a = (1 / (1 + np.exp(-d)) for d in (d_o, d_a))
        out.update({
            "d_loss": float(d_loss), "d_accuracy": float(np.mean(np.r_[d_o < 0, d_a >= 0])),
            "d_logit_pct_original": [float(v) for v in np.percentile(d_o, PERCENTILES)],
            "d_logit_pct_pgd1": [float(v) for v in np.percentile(d_a, PERCENTILES)],
            "comb_original": float(np.mean(comb_correct(z_o.argmax(1), y, p_o, cfg.threshold,
                                                        adversarial=False))),
            "comb_pgd1": float(np.mean(comb_correct(z_a.argmax(1), y, p_a, cfg.threshold,
                                                    adversarial=True)))})
    return out


def _accuracy_in(cfg, clf32, x, y):
    """PGD-1 accuracy with the network computed in cfg.precision (the attack the training
    loop sees), the same weights as clf32."""
    import keras

    from gandef_tf.models import build_classifier

    keras.mixed_precision.set_global_policy(cfg.precision)
    try:
        clf = build_classifier(cfg.dataset, cfg.dropout)
        clf.set_weights(clf32.get_weights())
        attack = make_attack(clf, spec_for(cfg, "pgd1"))
        right = [np.argmax(clf(attack(x[i:i + cfg.eval_batch_size], y[i:i + cfg.eval_batch_size]),
                               training=False).numpy(), 1) == y[i:i + cfg.eval_batch_size]
                 for i in range(0, len(x), cfg.eval_batch_size)]
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return float(np.mean(np.concatenate(right)))


# A run whose training set differs in these would have trained on the probe's hold-out.
SAME_HOLD_OUT = ("dataset", "n_train", "n_val", "data_seed")


def init_weights(cfg, folder):
    """(weights, record) of the finished run in `folder`, refused unless that run held out
    exactly cfg's validation images."""
    import keras

    folder = Path(folder)
    if not (folder / "train.json").exists() or not (folder / "classifier.keras").exists():
        raise GandefError(f"--init_from: {folder} holds no finished run (train.json, "
                          "classifier.keras)")
    stored = runs.read_json(folder / "config.json")["config"]
    differ = [k for k in SAME_HOLD_OUT if stored.get(k) != getattr(cfg, k)]
    if differ or not cfg.n_val:
        raise GandefError(f"--init_from: {folder} did not hold out this probe's validation "
                          f"images (differs in {', '.join(differ) or 'n_val = 0'})")
    clf = keras.models.load_model(folder / "classifier.keras")
    return float32_copy(clf).get_weights(), {
        "run": str(folder), "method": stored["method"], "epochs": stored["epochs"],
        "lr": stored["lr"], "train_seconds": runs.read_json(folder / "train.json")["train_seconds"]}


def start_trainer(cfg, weights=None):
    """A trainer for cfg, from `weights` when given, else from the shared pre-training's
    classifier when cfg has one."""
    import keras

    from gandef_tf import training
    from gandef_tf.methods import build_trainer

    pre = None if weights is not None else training.pretrain_config(cfg)
    if pre is not None:
        weights = training.train(pre, verbose=2)[0].get_weights()
    keras.utils.set_random_seed(cfg.seed)
    trainer = build_trainer(cfg)
    if weights is not None:
        trainer.classifier.set_weights(weights)
    return trainer


def run_probe(cfg, steps, points, score_n, overrides, out, init_from=None):
    import keras

    from gandef_tf import training

    weights, origin = init_weights(cfg, init_from) if init_from else (None, None)
    trainer = start_trainer(cfg, weights)
    x_val, y_val = training.load_validation(cfg)
    x_val, y_val = x_val[:score_n], y_val[:score_n]
    train_ds, _ = training.make_datasets(cfg, training.load_data(cfg)[0], (x_val, y_val))
    start, per_point = time.time(), max(1, steps // points)

    class Score(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            if origin:  # the starting point is a trained run: score it as step 0
                self.on_epoch_end(-1)

        def on_epoch_end(self, epoch, logs=None):
            row = {"step": per_point * (epoch + 1), "seconds": round(time.time() - start, 1),
                   "train": {k: float(v) for k, v in (logs or {}).items()},
                   "validation": score(trainer, cfg, x_val, y_val), "score_n": len(y_val),
                   "overrides": overrides, "config": cfg.to_dict(), **runs.provenance(),
                   **({"init_from": origin} if origin else {})}
            print(json.dumps({"step": row["step"], **row["validation"]}), flush=True)
            with open(out, "a") as f:
                f.write(json.dumps(row, sort_keys=True) + "\n")

    # One fit over one iterator: the stream goes on across scoring points.
    trainer.fit(train_ds.repeat(), steps_per_epoch=per_point, epochs=points, verbose=0,
                callbacks=[Score()] + training.schedule_callbacks(cfg))


def paper_check(preset, steps, datasets, methods):
    """Every paper config for a few hundred steps: does it learn at all?"""
    from gandef_tf import training

    result = {}
    for dataset in datasets:
        for method in methods:
            cfg = get_config(preset, dataset, method)
            trainer = start_trainer(dataclasses.replace(cfg, pretrain_epochs=0))
            (x, y), (x_te, y_te) = training.load_data(dataclasses.replace(cfg, n_test=500))
            ds = training.make_datasets(cfg, (x, y), (x_te, y_te))[0]
            hist = trainer.fit(ds.repeat(), steps_per_epoch=1, epochs=steps, verbose=0,
                               callbacks=training.schedule_callbacks(cfg)).history
            clf = float32_copy(trainer.classifier)
            acc = float(np.mean(clf.predict(x_te, verbose=0).argmax(1) == y_te))
            # a diverged loss is null (NaN is not JSON), with diverged: true
            loss = lambda v: float(v) if math.isfinite(float(v)) else None
            result.setdefault(dataset, {})[method] = {
                "steps": steps, "first_loss": loss(hist["loss"][0]),
                "last_loss": loss(hist["loss"][-1]), "test_accuracy": acc,
                "diverged": not all(math.isfinite(float(v)) for v in hist["loss"]),
                "precision": cfg.precision}
            print(dataset, method, result[dataset][method], flush=True)
    return {"probe": result, **runs.provenance()}


def merge(old, new, datasets):
    """probe.json after probing `datasets`: new's entries for them, old's for the others
    (CIFAR-10's probes take half an hour, so datasets may be probed one at a time), and
    each dataset's commit, date and device under provenance_by_dataset."""
    out = dict(new, probe={**old.get("probe", {}), **new["probe"]})
    out["provenance_by_dataset"] = {**old.get("provenance_by_dataset", {}), **{
        d: {k: new[k] for k in ("commit", "date", "device")} for d in datasets}}
    return out


def main(argv):
    if FLAGS.paper_check:
        bad = [d for d in FLAGS.datasets if d not in DATASETS]
        if bad or not FLAGS.datasets:
            raise GandefError(f"--datasets must name some of {DATASETS}, got {FLAGS.datasets}")
        res = paper_check(FLAGS.preset, FLAGS.steps, FLAGS.datasets, FLAGS.methods)
        path = Path(FLAGS.out or f"figures/{FLAGS.preset}/probe.json")
        runs.write_json(path, merge(runs.read_json(path) if path.exists() else {}, res,
                                    FLAGS.datasets))
        return
    cli.set_threads(FLAGS.threads)
    overrides = parse_overrides(FLAGS.set)
    cfg = get_config(FLAGS.preset, FLAGS.dataset, FLAGS.method, FLAGS.seed, **overrides)
    if not cfg.n_val:
        raise GandefError("a tuning probe scores held-out training images: this config has "
                          "n_val = 0; add --set=n_val=5000")
    if not FLAGS.out:
        raise GandefError("--out is required (a .jsonl file the probe appends to)")
    run_probe(cfg, FLAGS.steps, FLAGS.points, FLAGS.score_n, overrides, FLAGS.out,
              FLAGS.init_from)


if __name__ == "__main__":
    flags.DEFINE_enum("preset", "quick", ["paper", "quick", "smoke"], "Preset.")
    flags.DEFINE_enum("dataset", "cifar10", DATASETS, "Dataset.")
    flags.DEFINE_enum("method", "mix_pgd", METHODS, "Method.")
    flags.DEFINE_integer("seed", 0, "Training seed.")
    flags.DEFINE_multi_string("set", [], "Config override field=value (tuples: a:b).")
    flags.DEFINE_integer("steps", 300, "Optimizer steps.")
    flags.DEFINE_integer("points", 3, "Evenly spaced scoring points.")
    flags.DEFINE_integer("score_n", 500, "Validation images scored at each point.")
    flags.DEFINE_string("out", None, "Output: .jsonl (probe) or .json (--paper_check).")
    flags.DEFINE_string("init_from", None, "Start from this finished run folder's classifier.")
    flags.DEFINE_bool("paper_check", False, "Probe every paper config instead.")
    flags.DEFINE_list("datasets", list(DATASETS), "--paper_check: datasets.")
    flags.DEFINE_list("methods", ["vanilla", "pure_pgd", "mix_pgd", "logit_pairing", "gandef"],
                      "--paper_check: methods.")
    flags.DEFINE_integer("threads", 0, "TensorFlow threads (0: all cores).")
    cli.run(main)
