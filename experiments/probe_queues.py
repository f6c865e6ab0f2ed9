"""Issue 36's epoch probes as data: Pure PGD on CIFAR-10's quick config, allCNN's dropout
{table4, authors_code} x schedule, 10 adversarial epochs each, in two queues.

    python -m experiments.probe_queues --queue=0     # one queue, pinned to core 0
    make probe-epochs                                # both queues at once, one per core

Each queue runs its probes in order with one TensorFlow thread, pinned to its core
(two one-thread runs beat one two-thread run on 2 cores); a probe another process holds
is left to it, a finished one is only reported, and one that stops with an error (a
divergence is a finding) is reported and the queue goes on. Running the same command
again continues every probe where its checkpoint stopped (experiments.probe_epochs).
Rows go to --out (DEFAULT_OUT), one per probe and epoch; `make probe-report` renders them.
"""

import fcntl
import os

from absl import flags

from experiments import cli
from experiments.probe import parse_overrides
from experiments.probe_epochs import define_scoring_flags, probe_root, run
from gandef_tf import GandefError
from gandef_tf.config import get_config

FLAGS = flags.FLAGS
DEFAULT_OUT = "results/quick/cifar10/tuning/dropout_schedule.jsonl"

# docs/deviations.md#dropout-and-schedule-probes-issue-36-under-way gives the sources.
SGD = ["optimizer=sgd", "lr=0.05", "momentum=0.9", "weight_decay=5e-4", "pretrain_epochs=0"]
SCHEDULES = {
    "sgd_cyclic": SGD + ["lr_schedule=linear", "lr_boundaries=1404:3510",
                         "lr_values=0.0:0.05:0.0"],
    "adam": [],  # the quick preset's, from the shared clean pre-training
    "sgd_drop": SGD + ["lr_boundaries=2808", "lr_values=0.05:0.005"],
    "adam_nopre": ["pretrain_epochs=0"],
}
# The issue asks for {table4, authors_code} x {Adam, one SGD schedule} and pre-training's
# effect; the second SGD shape (sgd_drop) is the least needed, so it comes last.
QUEUES = {0: ["authors_code.sgd_cyclic", "authors_code.adam", "authors_code.adam_nopre",
              "authors_code.sgd_drop"],
          1: ["table4.sgd_cyclic", "table4.adam", "table4.sgd_drop"]}


def run_queue(k, out, score_n, train_n, verbose, save_every, preset="quick",
              dataset="cifar10", epochs=10):
    """Queue k's probes in order, pinned to core k."""
    if hasattr(os, "sched_setaffinity") and k < len(os.sched_getaffinity(0)):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[k]})
    for entry in QUEUES[k]:
        dropout, schedule = entry.split(".")
        name = f"pure_pgd.{entry}"
        overrides = {**parse_overrides([f"dropout={dropout}"] + SCHEDULES[schedule]),
                     "epochs": epochs}
        cfg = get_config(preset, dataset, "pure_pgd", 0, **overrides)
        probe_root(cfg).mkdir(parents=True, exist_ok=True)
        with open(probe_root(cfg) / f"{name}.lock", "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print(f"probe {name}: another process runs it; next")
                continue
            try:
                run(cfg, name, overrides, out, score_n, train_n, verbose, save_every)
            except GandefError as e:
                print(f"probe {name} stopped: {e}; next", flush=True)


def main(argv):
    if FLAGS.queue not in QUEUES:
        raise GandefError(f"--queue must be one of {sorted(QUEUES)}, got {FLAGS.queue}")
    cli.set_threads(FLAGS.threads)
    run_queue(FLAGS.queue, FLAGS.out, FLAGS.score_n, FLAGS.train_n, FLAGS.verbose,
              FLAGS.save_every)


if __name__ == "__main__":
    flags.DEFINE_integer("queue", None, "The queue to run (QUEUES), pinned to that core.")
    define_scoring_flags(out=DEFAULT_OUT, threads=1)  # one thread: one queue per core
    cli.run(main)
