"""What attacking in bfloat16 would cost in strength (measured, not adopted: evaluation
is float32). One finished run, one attack, the same test images and random starts, the
network computed in float32 and in bfloat16.

    python -m experiments.precision_check --preset=quick --dataset=mnist --method=pure_pgd \
        --attack=pgd1 --n=1000          # adds a row to figures/<preset>/precision_check.json

The row: accuracy under the attack in each precision, their difference (float32 minus
bfloat16, in points) and its paired standard error, sqrt(var(c32 - c16) / n) over the
per-example correctness c.
"""

import numpy as np
from absl import flags

from experiments import cli
from gandef_tf import GandefError, report, runs

flags.DEFINE_string("attack", "pgd1", "Attack name in the dataset's registry.")
flags.DEFINE_integer("n", 1000, "Test images (the run's own seeded test set, first n).")
flags.DEFINE_integer("attack_seed", 0, "Seed of the attack's random start (both precisions).")
FLAGS = flags.FLAGS


def correct_under_attack(model, spec, x, y, batch, seed):
    import tensorflow as tf

    from gandef_tf.attacks import make_attack

    attack = make_attack(model, spec)
    tf.random.set_seed(seed)  # the same random starts in both precisions
    out = []
    for i in range(0, len(x), batch):
        x_adv = attack(x[i:i + batch], y[i:i + batch])
        out.append(np.argmax(model(x_adv, training=False).numpy(), 1) == y[i:i + batch])
    return np.concatenate(out)


def paired(c32, c16):
    d = c32.astype(float) - c16.astype(float)
    return {"n": int(len(d)), "float32": float(c32.mean()), "bfloat16": float(c16.mean()),
            "difference_points": 100 * float(d.mean()),
            "paired_se_points": 100 * float(d.std(ddof=1) / np.sqrt(len(d)))}


def main(argv):
    import keras

    from gandef_tf import training
    from gandef_tf.attacks import spec_for
    from gandef_tf.models import build_classifier, float32_copy

    cfg = cli.keep_stored_precision(cli.config_from_flags())
    finished = training.load_finished(cfg)
    if finished is None:
        raise GandefError(f"no finished run at {runs.run_dir(cfg)}; train it first "
                          "(python -m experiments.train with the same flags)")
    clf32 = float32_copy(finished[0])
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        clf16 = build_classifier(cfg.dataset, cfg.dropout)
        clf16.set_weights(clf32.get_weights())
    finally:
        keras.mixed_precision.set_global_policy("float32")
    _, (x, y) = training.load_data(cfg)
    x, y = x[:FLAGS.n], y[:FLAGS.n]
    spec = spec_for(cfg, FLAGS.attack)
    row = paired(*(correct_under_attack(m, spec, x, y, cfg.eval_batch_size, FLAGS.attack_seed)
                   for m in (clf32, clf16)))
    # The checkpoint, not results/: a model retrained on this host to measure this need not
    # be the one whose results are committed (the committed run's precision may differ).
    row.update(attack=FLAGS.attack, run=str(runs.results_dir(cfg)),
               checkpoint=str(runs.run_dir(cfg)), trained_precision=cfg.precision,
               **runs.provenance())
    path = report.figures_dir(cfg.preset) / "precision_check.json"
    rows = runs.read_json(path) if path.exists() else {}
    rows[f"{cfg.dataset}/{cfg.method}/seed{cfg.seed}/{FLAGS.attack}"] = row
    runs.write_json(path, rows)
    print(row)


if __name__ == "__main__":
    cli.define_run_flags()
    cli.run(main)
