"""Flags and error handling shared by the experiment modules.

    from experiments import cli
    cli.define_run_flags()
    cfg = cli.config_from_flags()      # inside main(); GandefError -> one line, exit 2
    ...
    cli.run(main)                      # a bad flag, too, is one line and exit 2
"""

import dataclasses
import sys

from absl import app, flags

from gandef_tf import GandefError, runs
from gandef_tf.config import DATASETS, METHODS, PRESETS, get_config

FLAGS = flags.FLAGS


def define_run_flags():
    flags.DEFINE_enum("dataset", "mnist", DATASETS, "Dataset.")
    flags.DEFINE_enum("method", "gandef", METHODS, "Training method.")
    flags.DEFINE_enum("preset", "quick", PRESETS, "paper (GPU), quick (CPU MNIST) or smoke.")
    flags.DEFINE_integer("seed", 0, "Training seed.")
    flags.DEFINE_float("eps", None, "Override every attack's eps, in (0, 1].")
    flags.DEFINE_float("eps_iter", None, "Override every attack's step size, in (0, 1].")
    flags.DEFINE_float("threshold", None, "GanDef-Comb threshold in [0, 1] (default 0.5).")
    flags.DEFINE_enum("disc_batch", None, ["fresh", "reuse"],
                      "GanDef's discriminator batch: fresh (Algorithm 1) or reuse.")
    flags.DEFINE_enum("mixed_precision", None, ["none", "float16", "bfloat16"],
                      "Training precision: none (float32), float16 (with loss scaling) or "
                      "bfloat16; variables, logits and evaluation stay float32. Default: "
                      "bfloat16 on a CPU with native bfloat16, else float32; an existing "
                      "run keeps the precision it was started in.")
    flags.DEFINE_enum("gandef_loss", None, ["equation", "authors_code"],
                      "GanDef's discriminator loss: the paper's equations or the authors' "
                      "released code (sigmoid applied twice); default: the preset's.")
    flags.DEFINE_enum("strategy", "default", ["default", "mirrored"],
                      "mirrored: data-parallel training on every local accelerator.")
    flags.DEFINE_list("eval_attacks", None, "Attacks to evaluate (default: the preset's), "
                      "e.g. fgsm,bim,pgd1,pgd2,pgd_adaptive,cw_merged,apgd_ce,apgd_dlr "
                      "(the apgd_* need IBM ART: pip install -e \".[eval]\").")
    flags.DEFINE_integer("strong_eval_n", None, "Test images for the adaptive and APGD attacks, "
                         "a seeded subset (default 1000; all when the set is smaller).")
    flags.DEFINE_integer("verbose", 1, "Keras verbosity: 0 silent, 1 progress bars, 2 lines.")
    flags.DEFINE_bool("train", False, "Start what would otherwise be refused: retraining a run "
                      "over its saved results, or work estimated above 30 minutes on this "
                      "device (make: TRAIN=1).")
    flags.DEFINE_integer("threads", 0, "TensorFlow's intra- and inter-op threads (0: its default, "
                         "every core). On a CPU, `make -j2 results RUN_FLAGS=--threads=1` runs "
                         "two runs at once, one core each (docs/performance.md).")


def set_threads(n):
    """Fix TensorFlow's thread pools; they are created with its runtime, so this must run
    before the first TensorFlow op of the process."""
    if n < 0:
        raise GandefError(f"threads must be >= 0 (0: TensorFlow's default), got {n}")
    if n:
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(n)
            tf.config.threading.set_inter_op_parallelism_threads(n)
        except RuntimeError:
            raise GandefError("threads must be set before TensorFlow starts") from None


PRECISION_FLAG = {None: None, "none": "float32", "float16": "mixed_float16",
                  "bfloat16": "mixed_bfloat16"}


def config_from_flags(dataset=None, method=None, seed=None):
    """The run flags' config; dataset, method and seed override their flags (the planner
    builds one config per run from the same flags)."""
    set_threads(FLAGS.threads)
    cfg = get_config(FLAGS.preset, dataset or FLAGS.dataset, method or FLAGS.method,
                     FLAGS.seed if seed is None else seed, eps=FLAGS.eps,
                     eps_iter=FLAGS.eps_iter, threshold=FLAGS.threshold,
                     disc_batch=FLAGS.disc_batch, gandef_loss=FLAGS.gandef_loss,
                     strong_eval_n=FLAGS.strong_eval_n,
                     eval_attacks=tuple(FLAGS.eval_attacks) if FLAGS.eval_attacks else None,
                     precision=PRECISION_FLAG[FLAGS.mixed_precision])
    return cfg if FLAGS.mixed_precision else keep_stored_precision(cfg)


def keep_stored_precision(cfg):
    """A run keeps the precision it was started (or committed) in when none is asked for,
    so that a resume or re-evaluation on a host with another default never mixes two
    precisions in one run; asking for another one explicitly is refused by runs.prepare."""
    for path in (runs.run_dir(cfg) / "config.json", runs.results_dir(cfg) / "config.json"):
        if path.exists():
            stored = (runs.read_json(path).get("config") or {}).get("precision", "float32")
            if stored != cfg.precision and path.parent == runs.run_dir(cfg):
                # A checkpoint is about to resume: say so (stderr: make reads some stdouts).
                print(f"[{cfg.preset}] {path.parent} was started in {stored}: it continues in "
                      f"{stored} (this host's default is {cfg.precision})", file=sys.stderr)
            return dataclasses.replace(cfg, precision=stored)
    return cfg


def guarded(main):
    """absl main whose GandefError becomes one 'error:' line and exit status 2."""

    def wrapped(argv):
        if len(argv) > 1:
            print(f"error: unexpected arguments {argv[1:]}", file=sys.stderr)
            sys.exit(2)
        try:
            main(argv)
        except GandefError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)

    return wrapped


def parse_flags(argv):
    """absl's flag parser, but a bad flag is one 'error:' line and exit status 2 (absl's own
    prints a FATAL line and a hint on two lines and exits 1)."""
    try:
        return FLAGS(argv)
    except flags.Error as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def run(main):
    """app.run for the experiment modules: every bad input is one 'error:' line, exit 2."""
    app.run(guarded(main), flags_parser=parse_flags)
