"""The one prepared command for a session that is lent a GPU (`make gpu-check`, < 8 min).

    python -m experiments.gpu_check                       # figures/bench-gpu.json
    python -m experiments.gpu_check --train_steps=2 --batch=8 --matmul_n=256 --out=/tmp/g.json

Writes the benchmark's bfloat16-vs-float32 rows measured on this device, then, for each
dataset, the measured seconds of `--train_steps` paper-preset training steps of every
Table 2 method (float32 unless --precision says otherwise; random data: speed only),
and the projected time of each full paper run (steps per epoch x epochs x seconds per
step; evaluation not included), labelled as a projection. Runs on a CPU as well, where
it says so in `device`.
"""

import math
import time

from absl import flags

from experiments import bench, cli
from gandef_tf import runs
from gandef_tf.config import get_config

flags.DEFINE_string("out", "figures/bench-gpu.json", "Where to write the JSON.")
flags.DEFINE_integer("batch", 128, "Batch for the attack rows (training uses the preset's).")
flags.DEFINE_integer("steps", 3, "Timed repetitions of each benchmark row.")
flags.DEFINE_integer("matmul_n", 4096, "Side of the matmul behind the *_matmul_gflops rows.")
flags.DEFINE_integer("attack_iter_cap", None, "Caps every attack's iterations (tiny tests "
                     "only: the rows then no longer measure the paper's attacks).")
flags.DEFINE_integer("train_steps", 100, "Paper-preset training steps timed per method.")
flags.DEFINE_enum("precision", "float32", ["float32", "mixed_bfloat16", "mixed_float16"],
                  "Precision of the timed training steps.")
flags.DEFINE_list("methods", ["vanilla", "pure_pgd", "mix_pgd", "logit_pairing", "gandef"],
                  "Methods whose training steps are timed.")
FLAGS = flags.FLAGS
TRAIN_SIZES = {"mnist": 60000, "cifar10": 50000}


def time_training(dataset, method, steps, precision, batch=None, iter_cap=None):
    """(seconds per step over `steps` steps after one warm-up step, the config)."""
    import tensorflow as tf

    from gandef_tf.methods import build_trainer

    extra = {"batch_size": batch, "attack_iter_cap": iter_cap}  # None: the preset's
    cfg = get_config("paper", dataset, method, precision=precision, **extra)
    trainer = build_trainer(cfg)
    x, y = bench._images(dataset, 2 * cfg.batch_size)
    data = (x[:cfg.batch_size], y[:cfg.batch_size])
    data = (data, (x[cfg.batch_size:], y[cfg.batch_size:])) if cfg.is_gandef else data
    step = tf.function(trainer.train_step)
    step(data)["loss"].numpy()
    start = time.perf_counter()
    for _ in range(steps):
        out = step(data)
    out["loss"].numpy()
    return (time.perf_counter() - start) / steps, cfg


def projection(cfg, seconds_per_step):
    steps = math.floor(TRAIN_SIZES[cfg.dataset] / cfg.batch_size) * cfg.epochs
    return {"steps": steps, "epochs": cfg.epochs, "seconds_per_step": seconds_per_step,
            "projected_hours": steps * seconds_per_step / 3600}


def main(argv):
    start = time.time()
    res = {"rows": bench.bench_bfloat16(FLAGS.batch, FLAGS.steps, FLAGS.matmul_n,
                                        FLAGS.attack_iter_cap), "training": {},
           "note": "projected_hours: measured seconds per step x the paper run's steps; "
                   "training only, evaluation not included; a projection, not a run"}
    # Training keeps each preset's batch unless --batch is changed (a tiny CPU test).
    batch = FLAGS.batch if FLAGS.batch != 128 else None
    for dataset in ("mnist", "cifar10"):
        for method in FLAGS.methods:
            sec, cfg = time_training(dataset, method, FLAGS.train_steps, FLAGS.precision, batch,
                                     FLAGS.attack_iter_cap)
            res["training"].setdefault(dataset, {})[method] = {
                "timed_steps": FLAGS.train_steps, "precision": FLAGS.precision,
                "batch_size": cfg.batch_size, **projection(cfg, sec)}
            print(dataset, method, f"{sec:.4f} s/step", flush=True)
    res["training_total_projected_hours"] = sum(
        r["projected_hours"] for d in res["training"].values() for r in d.values())
    res["attack_iter_cap"] = FLAGS.attack_iter_cap
    res.update(wall_seconds=round(time.time() - start, 1), **runs.provenance())
    runs.write_json(FLAGS.out, res)
    print(f"wrote {FLAGS.out} in {res['wall_seconds']} s")


if __name__ == "__main__":
    cli.run(main)
