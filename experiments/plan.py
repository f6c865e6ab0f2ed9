"""Which runs still need work, what it costs on this device, and whether it may start:
the step `make results` takes before it trains or evaluates anything.

    python -m experiments.plan --preset=paper --list           # every run, its work and time
    python -m experiments.plan --preset=quick --datasets=mnist # the make targets to run

Without --list it prints, on one line, the make targets (run.<dataset>.<method>.<seed>)
of the runs that need work, and nothing when every run is complete. When that work
would retrain a run over its saved results, or is estimated above 30 minutes on this
device, it prints one `error:` line instead (what, how long, how to proceed) and exits 2,
unless --train. Run flags (--eval_attacks, --threshold, ...) are the evaluate command's.
--list prints each run's work and estimated time and the total; --fresh prices every run
as if nothing were saved (what retraining everything costs), --gpu at one GPU's rates
(figures/gpu_proxy/) instead of this device's (docs/presets.md, Expected times).

refusal() is that decision for every command that trains or evaluates (experiments.evaluate,
train, reproduce, gamma_sweep): gandef_tf only reads what a run needs (gandef_tf.plan) and
what it costs (gandef_tf.estimate).
"""

from absl import flags

from experiments import cli
from gandef_tf import GandefError, estimate, plan, report, runs
from gandef_tf.config import DATASETS, METHODS, get_config

FLAGS = flags.FLAGS


def define_flags():
    cli.define_run_flags()
    flags.DEFINE_string("datasets", "all", "Datasets, comma separated; all: every dataset.")
    flags.DEFINE_string("seeds", "all", "Seeds, comma separated; all: the seeds with results "
                        "for this preset (0 when none).")
    flags.DEFINE_string("methods", ",".join(METHODS), "Methods, comma separated.")
    flags.DEFINE_bool("list", False, "Print every run's work and estimated time, and the total.")
    flags.DEFINE_bool("fresh", False, "With --list: price every run as if nothing were saved.")
    flags.DEFINE_bool("gpu", False, "With --list: at the rates of one GPU (figures/gpu_proxy/).")


def selection(preset, datasets, seeds, methods):
    """[(dataset, method, seed)] asked for; 'all' datasets are every dataset here (this
    is what to make, not what to show), 'all' seeds those found for the preset."""
    if str(datasets).strip() == "all":
        datasets = ",".join(DATASETS)
    if str(seeds).strip() == "all":
        seeds = sorted({s for ss in report.found(preset).values() for s in ss}) or [0]
    preset, datasets, seeds = report.check_selection(preset, datasets, seeds)
    methods = report.parse_list(methods)
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise GandefError(f"unknown method(s) {bad or methods}; choose from {METHODS}")
    return [(d, m, s) for d in datasets for m in methods for s in seeds]


def statuses(runs_asked, fresh=False):
    out = []
    for d, m, s in runs_asked:
        st = plan.status(cli.config_from_flags(d, m, s))
        if fresh:
            st = plan.Status(st.cfg, None, ["original", *st.cfg.eval_attacks], False, 0)
        out.append(st)
    return out


def retrain_command(cfg):
    """The command that retrains and re-evaluates cfg's run over its results."""
    if cfg.tag:
        return (f"python -m experiments.gamma_sweep --preset={cfg.preset} "
                f"--dataset={cfg.dataset} --gammas={cfg.gamma:g} --seeds={cfg.seed} --train")
    default = get_config(cfg.preset, cfg.dataset, cfg.method).eval_attacks
    attacks = "" if cfg.eval_attacks == default else f" --eval_attacks={','.join(cfg.eval_attacks)}"
    return (f"python -m experiments.evaluate --preset={cfg.preset} --dataset={cfg.dataset} "
            f"--method={cfg.method} --seed={cfg.seed}{attacks} --train")


def refusal(statuses, allow_train=False, proceed="add --train", rate=None):
    """None when the work of `statuses` may start; else the one line that says what it
    would do, what it costs on this device, and how to proceed."""
    if allow_train or all(s.work in ("none", "rescore") for s in statuses):
        return None  # before any estimate: it starts TensorFlow to name the device
    rate = rate or estimate.device_rate()
    retrain = [s for s in statuses if s.work == "retrain"]
    if retrain:
        s = retrain[0]
        more = f" (and {len(retrain) - 1} more runs)" if len(retrain) > 1 else ""
        lacks = "holds results" if s.train_only else f"lacks {', '.join(s.missing)}"
        keep = "" if s.train_only or s.cfg.tag else (
            "; or, to keep them and add the attacks, first reproduce its model (checked bit "
            "for bit against its history): python -m experiments.reproduce "
            f"--preset={s.cfg.preset} --dataset={s.cfg.dataset} --method={s.cfg.method} "
            f"--seed={s.cfg.seed} --threads=1 --train")
        return (f"{s.name()}{more} {lacks} and its model is not in {runs.run_dir(s.cfg)}: "
                "retraining it replaces the committed results; to retrain it (about "
                f"{estimate.duration(s.seconds(rate))} on this device): "
                f"{retrain_command(s.cfg)}{keep}")
    busy = [s for s in statuses if s.work in ("train", "evaluate")]
    total = sum(s.seconds(rate) for s in busy)
    if total <= estimate.LIMIT_S:
        return None
    trains = [s for s in busy if s.work == "train"]
    what = ", ".join(f"{s.cfg.dataset}/{runs.method_folder(s.cfg.method, s.cfg.tag)}/seed{s.cfg.seed}"
                     for s in busy[:4]) + (f" and {len(busy) - 4} more" if len(busy) > 4 else "")
    verb = ("train" if all(s.train_only for s in trains) else "train and evaluate") if trains \
        else "evaluate"
    return (f"would {verb} {len(busy)} {statuses[0].cfg.preset} run(s) ({what}): about "
            f"{estimate.duration(total)} on this device, {rate.device} ({rate.source}), over the "
            f"{estimate.LIMIT_S // 60}-minute limit; to start anyway, {proceed} "
            "(docs/presets.md, Expected times)")


def listing(sts, rate):
    lines = [f"[{FLAGS.preset}] on {rate.device} ({rate.source}):"]
    total = 0.0
    for st in sts:
        seconds = st.seconds(rate)
        total += seconds
        cfg = st.cfg
        lines.append(f"  {cfg.dataset}/{cfg.method}/seed{cfg.seed}: {st.work}"
                     + (f", about {estimate.duration(seconds)}" if seconds else ""))
    busy = sum(st.work not in ("none", "rescore") for st in sts)
    lines.append(f"[{FLAGS.preset}] {busy} of {len(sts)} runs need training or evaluation: "
                 f"about {estimate.duration(total)} in all, one after another")
    return lines


def main(argv):
    sts = statuses(selection(FLAGS.preset, FLAGS.datasets, FLAGS.seeds, FLAGS.methods),
                   FLAGS.fresh)
    if FLAGS.list:
        rate = estimate.device_rate()
        if FLAGS.gpu:
            rate = estimate.gpu_rate()
        print("\n".join(listing(sts, rate)))
        return
    todo = [st for st in sts if st.work != "none"]
    why_not = refusal(todo, FLAGS.train, proceed="rerun with TRAIN=1 (or --train)")
    if why_not:
        raise GandefError(why_not)
    print(" ".join(f"run.{st.cfg.dataset}.{st.cfg.method}.{st.cfg.seed}" for st in todo))


if __name__ == "__main__":
    define_flags()
    cli.run(main)
