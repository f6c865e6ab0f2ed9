"""Speed, measured as ratios against a baseline run in the same process.

    python -m experiments.bench                 # writes figures/bench.json and bench.md
    python -m experiments.bench --out=figures/bench-gpu.json --steps=5
    python -m experiments.bench --only_pgd --intra_op=1 --sweep_batches=64,256,512
    python -m experiments.bench --only_pgd --precision=bfloat16 --sweep_batches=256,512

Measures (1) the float32 matmul rate, (2) PGD-1 throughput of our compiled attack against
a direct eager call of CleverHans' projected_gradient_descent on the same LeNet and batch,
and the fraction of the matmul rate that our loop reaches (FLOPs of LeNet's forward and
input-gradient passes), (3) training time per step of every method relative to mix_pgd
(GanDef with a fresh discriminator batch, and with `disc_batch=reuse`), (4) evaluation
throughput for Table 2 over all four attacks, (5) bfloat16 against float32: the matmul
rate, PGD-1 on LeNet and allCNN, a Mix PGD train step per dataset (`bf16_*` rows; on a
CPU without native bfloat16, or with --nobfloat16, the float32 rows alone). `--only_pgd`
measures (1) and (2) only, with the options tried for speed (other batch sizes, XLA), each
as a ratio to the default in the same process, and adds the row to
figures/bench_sweep.json (one row per thread setting: thread pools are fixed per process;
`--row` names a row, e.g. for two processes timed side by side, one per core).
"""

import contextlib
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from absl import flags
from cleverhans.tf2.attacks.projected_gradient_descent import projected_gradient_descent

from experiments import cli
from gandef_tf import runs
from gandef_tf.attacks import generate, get_spec, make_attack
from gandef_tf.config import PAPER_ATTACKS, get_config, native_bfloat16
from gandef_tf.methods import build_trainer
from gandef_tf.models import build_classifier

FLAGS = flags.FLAGS


def timed(fn, steps):
    """Best of `steps` timings after one warm-up call (tracing excluded)."""
    fn()
    best = float("inf")
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def matmul_gflops(steps, n=2048, min_steps=20):
    """The float32 matmul rate, best of at least `min_steps` products: one takes ~0.1 s,
    and best-of-3 varied by 30% between runs, which the PGD fraction divides by."""
    a = tf.random.normal((n, n))
    mm = tf.function(lambda: tf.reduce_sum(tf.matmul(a, a)))
    return 2 * n**3 / timed(lambda: mm().numpy(), max(steps, min_steps)) / 1e9


def matmul_rate(dtype, steps, n=4096, min_steps=5):
    """GFLOP/s of an n x n matmul in `dtype` (bfloat16 runs on AMX where the CPU has it)."""
    a = tf.cast(tf.random.normal((n, n)), dtype)
    mm = tf.function(lambda: tf.reduce_sum(tf.cast(tf.matmul(a, a), tf.float32)))
    return 2 * n**3 / timed(lambda: mm().numpy(), max(steps, min_steps)) / 1e9


def forward_flops(model):
    """Multiply-adds x 2 of a network's convolutions and dense layers, per example."""
    total = 0
    for layer in model.layers:
        if hasattr(layer, "kernel"):
            out = layer.output.shape[1:-1]
            positions = int(np.prod(out)) if len(out) else 1
            total += 2 * positions * int(np.prod(layer.kernel.shape))
    return total


def _batch(n):
    return tf.random.uniform((n, 28, 28, 1)), tf.random.uniform((n,), maxval=10, dtype=tf.int32)


def _images(dataset, n):
    shape = {"mnist": (28, 28, 1), "cifar10": (32, 32, 3)}[dataset]
    return tf.random.uniform((n, *shape)), tf.random.uniform((n,), maxval=10, dtype=tf.int32)


@contextlib.contextmanager
def policy(precision):
    """Models built inside compute in `precision` (variables, logits and losses stay
    float32); float32 again afterwards."""
    keras.mixed_precision.set_global_policy(precision)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


def pgd1_rate(dataset, precision, batch, steps, iter_cap=None):
    """(examples/s, GFLOP/s) of the paper's PGD-1 on the dataset's network computed in
    `precision` (the attack's loss and the logits stay float32)."""
    with policy(precision):
        model = build_classifier(dataset)
        spec = get_spec(dataset, "pgd1", iter_cap=iter_cap)
        x, y = _images(dataset, batch)
        attack = make_attack(model, spec)
        seconds = timed(lambda: attack(x, y), steps)
    return batch / seconds, 2 * forward_flops(model) * spec.nb_iter * batch / seconds / 1e9


def train_step_seconds(dataset, method, precision, batch, steps, **overrides):
    """Seconds of one paper-config train step of `method` on random data of `dataset`."""
    cfg = get_config("paper", dataset, method, batch_size=batch, precision=precision,
                     **overrides)
    with policy(precision):  # build_trainer sets it too; this restores float32 after
        trainer = build_trainer(cfg)
        x, y = _images(dataset, 2 * batch)
        data = (x[:batch], y[:batch])
        data = (data, (x[batch:], y[batch:])) if cfg.is_gandef else data
        step = tf.function(trainer.train_step)
        return timed(lambda: step(data)["loss"].numpy(), steps)


def bench_bfloat16(batch, steps, matmul_n=4096, iter_cap=None, bfloat16=True):
    """bfloat16 over float32, each pair measured in this process (docs/performance.md);
    bfloat16=False: the float32 rows alone (allCNN's, which pricing reads), for a CPU
    without native bfloat16, where bfloat16 would time its emulation, many times slower."""
    precisions = ("float32", "mixed_bfloat16") if bfloat16 else ("float32",)
    res = {"fp32_matmul_gflops": matmul_rate(tf.float32, steps, matmul_n), "matmul_n": matmul_n}
    if bfloat16:
        res["bf16_matmul_gflops"] = matmul_rate(tf.bfloat16, steps, matmul_n)
    for dataset, net in (("mnist", "lenet"), ("cifar10", "allcnn")):
        rates = {p: pgd1_rate(dataset, p, batch, steps, iter_cap) for p in precisions}
        res[f"pgd1_{net}_examples_per_s"] = {p: r[0] for p, r in rates.items()}
        if bfloat16:
            res[f"bf16_vs_fp32_pgd1_{net}"] = rates["mixed_bfloat16"][0] / rates["float32"][0]
            if dataset == "mnist":
                res["pgd1_bf16_fraction_of_bf16_matmul_peak"] = (
                    rates["mixed_bfloat16"][1] / res["bf16_matmul_gflops"])
    for dataset in ("mnist", "cifar10"):
        seconds = {p: train_step_seconds(dataset, "mix_pgd", p, batch, max(1, steps - 1),
                                         attack_iter_cap=iter_cap) for p in precisions}
        res[f"train_step_mix_pgd_{dataset}_seconds"] = seconds
        if bfloat16:
            res[f"bf16_vs_fp32_train_step_mix_pgd_{dataset}"] = (
                seconds["float32"] / seconds["mixed_bfloat16"])
    return res


def bench_pgd(batch, steps):
    model = build_classifier("mnist")
    spec = get_spec("mnist", "pgd1")
    x, y = _batch(batch)
    ours = make_attack(model, spec)
    t_ours = timed(lambda: ours(x, y), steps)
    fn = lambda t: model(t, training=False)
    t_ch = timed(lambda: projected_gradient_descent(
        fn, x, spec.eps, spec.eps_iter, spec.nb_iter, np.inf, clip_min=0.0, clip_max=1.0,
        y=y, rand_init=True, sanity_checks=False).numpy(), max(1, steps - 1))
    # An input-gradient pass costs about one forward pass (no weight gradients).
    flops = 2 * forward_flops(model) * spec.nb_iter * batch
    return {"pgd1_examples_per_s": batch / t_ours, "cleverhans_eager_examples_per_s": batch / t_ch,
            "pgd1_vs_cleverhans_ratio": t_ch / t_ours, "pgd1_gflops": flops / t_ours / 1e9}


def bench_options(batch, steps, batches, base):
    """PGD-1 options tried for speed, each as a ratio to `base`, the default's examples/s
    measured by bench_pgd in this process."""
    model = build_classifier("mnist")
    spec = get_spec("mnist", "pgd1")
    fn = lambda t: model(t, training=False)
    ours = make_attack(model, spec)
    x, y = _batch(batch)
    xla = tf.function(lambda a, b: generate(fn, a, b, spec), jit_compile=True)
    out = {"xla_vs_default_ratio": batch / timed(lambda: xla(x, y).numpy(), steps) / base}
    for n in batches:
        xn, yn = _batch(int(n))
        out[f"batch{n}_vs_batch{batch}_ratio"] = int(n) / timed(lambda: ours(xn, yn), steps) / base
    return out


def row_name(row, inter_op, intra_op, batch, precision="float32"):
    suffix = "" if precision == "float32" else "_bf16"
    return row or f"inter{inter_op}_intra{intra_op}_batch{batch}{suffix}"


def bench_training(batch, steps, attack):
    x = np.random.default_rng(0).uniform(size=(batch * 2, 28, 28, 1)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 10, batch * 2).astype(np.int32)
    variants = [("vanilla", {}), ("pure_pgd", {}), ("mix_pgd", {}), ("logit_pairing", {}),
                ("gandef", {"disc_batch": "fresh"}), ("gandef_reuse", {"disc_batch": "reuse"})]
    seconds = {}
    for name, extra in variants:
        method = name.replace("_reuse", "")
        cfg = get_config("paper", "mnist", method, batch_size=batch, train_attack=attack,
                         precision="float32", **extra)
        trainer = build_trainer(cfg)
        step = tf.function(trainer.train_step)
        data = (x[:batch], y[:batch])
        data = (data, (x[batch:], y[batch:])) if cfg.is_gandef else data
        seconds[name] = timed(lambda: step(data)["loss"].numpy(), steps)
    return {f"{k}_vs_mix_pgd_time_ratio": v / seconds["mix_pgd"] for k, v in seconds.items()} | {
        "train_step_seconds": seconds}


def bench_eval(n, steps):
    """Steady-state Table 2 evaluation: the paper's four attacks, each compiled once (as in
    a real evaluation, where one trace serves thousands of examples), then predictions."""
    model = build_classifier("mnist")
    x = np.random.default_rng(2).uniform(size=(n, 28, 28, 1)).astype(np.float32)
    y = np.random.default_rng(3).integers(0, 10, n).astype(np.int32)
    attacks = [make_attack(model, get_spec("mnist", a)) for a in PAPER_ATTACKS]

    def evaluate_all():
        for attack in attacks:
            np.argmax(model(attack(x, y), training=False).numpy(), axis=1)

    return {"eval_examples_per_s_all_attacks": n / timed(evaluate_all, max(1, steps - 2))}


def main(argv):
    # Thread pools are fixed when TensorFlow's runtime starts: before the first op.
    tf.config.threading.set_inter_op_parallelism_threads(FLAGS.inter_op)
    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.intra_op)
    # --precision=bfloat16 (with --only_pgd): the same sweep with LeNet in bfloat16, its
    # FLOP rate over the bfloat16 matmul rate.
    precision = "mixed_bfloat16" if FLAGS.only_pgd and FLAGS.precision == "bfloat16" else "float32"
    res = {"matmul_gflops": matmul_gflops(FLAGS.steps) if precision == "float32"
           else matmul_rate(tf.bfloat16, FLAGS.steps)}
    with policy(precision):
        res.update(bench_pgd(FLAGS.batch, FLAGS.steps))
    res["pgd1_fraction_of_matmul_peak"] = res["pgd1_gflops"] / res["matmul_gflops"]
    res.update(batch=FLAGS.batch, inter_op=FLAGS.inter_op, intra_op=FLAGS.intra_op,
               precision=precision)
    if FLAGS.only_pgd:
        with policy(precision):
            res.update(bench_options(FLAGS.batch, FLAGS.steps, FLAGS.sweep_batches,
                                     res["pgd1_examples_per_s"]))
        res.update(runs.provenance())
        path = Path(FLAGS.sweep_out)
        rows = runs.read_json(path) if path.exists() else {}
        rows[row_name(FLAGS.row, FLAGS.inter_op, FLAGS.intra_op, FLAGS.batch, precision)] = res
        runs.write_json(path, rows)
        print({k: round(v, 3) if isinstance(v, float) else v for k, v in res.items()})
        return
    timings = bench_training(FLAGS.batch, FLAGS.steps, FLAGS.train_attack)
    res.update(timings)
    res["gandef_vs_mix_pgd_time_ratio"] = timings["gandef_vs_mix_pgd_time_ratio"]
    res["gandef_reuse_vs_mix_pgd_time_ratio"] = timings["gandef_reuse_vs_mix_pgd_time_ratio"]
    res.update(bench_eval(FLAGS.eval_examples, FLAGS.steps))
    # On a CPU without native bfloat16 the bf16 rows would time its emulation: float32 only.
    native = native_bfloat16() or bool(tf.config.list_physical_devices("GPU"))
    if FLAGS.bfloat16 and not native:
        print("no native bfloat16 on this CPU: measuring the float32 rows alone")
    res.update(bench_bfloat16(FLAGS.batch, FLAGS.steps, bfloat16=FLAGS.bfloat16 and native))
    res.update(train_attack=FLAGS.train_attack, **runs.provenance())
    runs.write_json(FLAGS.out, res)
    rows = [f"| {k} | {v:.3g} |" for k, v in res.items() if isinstance(v, float)]
    md = "\n".join([f"# Benchmark ({res['device']}, commit {res['commit']}, {res['date']})", "",
                    "| measure | value |", "|---|---|", *rows]) + "\n"
    runs.atomic_write(FLAGS.out.rsplit(".", 1)[0] + ".md", md)
    print(md)


def define_flags():
    flags.DEFINE_integer("batch", 128, "Batch size for the attack and training measurements.")
    flags.DEFINE_integer("steps", 3, "Timed repetitions of each measurement (after a warm-up).")
    flags.DEFINE_string("train_attack", "pgd1", "Training attack for the per-method timings.")
    flags.DEFINE_integer("eval_examples", 128, "Test examples for the evaluation throughput.")
    flags.DEFINE_string("out", "figures/bench.json", "Where to write the JSON (and .md beside).")
    flags.DEFINE_integer("inter_op", 0, "TensorFlow inter-op threads (0: TensorFlow's default).")
    flags.DEFINE_integer("intra_op", 0, "TensorFlow intra-op threads (0: TensorFlow's default).")
    flags.DEFINE_bool("only_pgd", False, "Measure only the matmul rate and PGD-1 (fast sweeps).")
    flags.DEFINE_bool("bfloat16", True, "Also measure bfloat16 against float32 (bf16_* rows).")
    flags.DEFINE_list("sweep_batches", [], "With --only_pgd: batch sizes to time against --batch.")
    flags.DEFINE_enum("precision", "float32", ["float32", "bfloat16"],
                      "With --only_pgd: the precision LeNet's PGD-1 computes in.")
    flags.DEFINE_string("sweep_out", "figures/bench_sweep.json", "Where --only_pgd adds its row.")
    flags.DEFINE_string("row", "", "Name of --only_pgd's row (default inter<N>_intra<N>_batch<B>); "
                        "name them apart to keep rows of processes run side by side.")


if __name__ == "__main__":
    define_flags()
    cli.run(main)
