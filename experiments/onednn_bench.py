"""TensorFlow's oneDNN CPU kernels against its default (Eigen) ones, as a ratio per pair.

    python -m experiments.onednn_bench                  # figures/bench_onednn.json, ~6 min
    python -m experiments.onednn_bench --dataset=mnist --steps=1 --out=/tmp/o.json

TF_ENABLE_ONEDNN_OPTS is read once, at TensorFlow's import, so the two settings cannot run
in one process. Instead two one-thread child processes, one per setting, run at the same
moment on two cores, and then again with the cores swapped: each ratio compares a pair
that ran side by side under the same load, and the swap cancels a difference between the
cores. Each child times one Pure PGD train step (the PGD probes' step) and the paper's
PGD-1 (iterations capped by --pgd_iters) on random images, float32, batch 128. With one
usable core the children run one after the other. Run it on a quiet machine.
"""

import json
import math
import os
import subprocess
import sys

from absl import flags

from experiments import cli
from gandef_tf import GandefError, runs

FLAGS = flags.FLAGS
SETTINGS = ("0", "1")  # TF_ENABLE_ONEDNN_OPTS: off (TensorFlow's Eigen kernels), on


def child():
    """One setting's timings, printed as one JSON line (this process's setting)."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from experiments.bench import pgd1_rate, train_step_seconds

    step = train_step_seconds(FLAGS.dataset, "pure_pgd", "float32", FLAGS.batch, FLAGS.steps)
    rate, _ = pgd1_rate(FLAGS.dataset, "float32", FLAGS.batch, FLAGS.steps,
                        iter_cap=FLAGS.pgd_iters)
    print(json.dumps({"onednn": runs.onednn(), "pure_pgd_step_s": step,
                      "pgd1_examples_per_s": rate}), flush=True)


def spawn(setting, core):
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=setting)
    pin = None if core is None else (lambda: os.sched_setaffinity(0, {core}))
    args = [sys.executable, "-m", "experiments.onednn_bench", "--child",
            f"--dataset={FLAGS.dataset}", f"--steps={FLAGS.steps}", f"--batch={FLAGS.batch}",
            f"--pgd_iters={FLAGS.pgd_iters}"]
    return subprocess.Popen(args, env=env, preexec_fn=pin, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def collect(proc):
    out, err = proc.communicate()
    if proc.returncode != 0:
        last = (err.strip().splitlines() or ["no output"])[-1]
        raise GandefError(f"a benchmark child failed (exit {proc.returncode}): {last}")
    return json.loads(out.strip().splitlines()[-1])


def ratios(pairs):
    """{'pure_pgd_step': ..., 'pgd1': ...}: oneDNN's speed over Eigen's, the geometric mean
    over pairs of (off, on) timings, each pair measured side by side."""
    step = [off["pure_pgd_step_s"] / on["pure_pgd_step_s"] for off, on in pairs]
    pgd = [on["pgd1_examples_per_s"] / off["pgd1_examples_per_s"] for off, on in pairs]
    gmean = lambda v: math.exp(sum(map(math.log, v)) / len(v))
    return {"pure_pgd_step_onednn_vs_eigen": gmean(step), "pgd1_onednn_vs_eigen": gmean(pgd),
            "per_pair": {"pure_pgd_step": step, "pgd1": pgd}}


def main(argv):
    if FLAGS.child:
        return child()
    cores = sorted(os.sched_getaffinity(0))
    pairs = []
    for swap in (False, True):
        if len(cores) >= 2:
            procs = [spawn(s, cores[i ^ swap]) for i, s in enumerate(SETTINGS)]
            pairs.append(tuple(collect(p) for p in procs))
        else:
            pairs.append(tuple(collect(spawn(s, None)) for s in SETTINGS))
    for (off, on) in pairs:
        if off["onednn"] is not False or on["onednn"] is not True:
            raise GandefError(f"the children ran oneDNN {off['onednn']}/{on['onednn']}, "
                                   "not off/on: this TensorFlow ignores TF_ENABLE_ONEDNN_OPTS")
    res = {**ratios(pairs), "pairs": pairs, "side_by_side": len(cores) >= 2,
           "dataset": FLAGS.dataset, "batch": FLAGS.batch, "steps": FLAGS.steps,
           "pgd_iters": FLAGS.pgd_iters, **runs.provenance()}
    del res["onednn"], res["threads"]  # this parent's, not the children's (one thread each)
    runs.write_json(FLAGS.out, res)
    print({k: round(v, 3) for k, v in res.items() if isinstance(v, float)})


def define_flags():
    flags.DEFINE_enum("dataset", "cifar10", ["mnist", "cifar10"], "The dataset's network.")
    flags.DEFINE_integer("batch", 128, "Batch size.")
    flags.DEFINE_integer("steps", 2, "Timed repetitions of each measurement (best of).")
    flags.DEFINE_integer("pgd_iters", 5, "PGD-1's iterations, capped to keep the run short.")
    flags.DEFINE_string("out", "figures/bench_onednn.json", "Where to write the JSON.")
    flags.DEFINE_bool("child", False, "Internal: time this process's setting.")


if __name__ == "__main__":
    define_flags()
    cli.run(main)
