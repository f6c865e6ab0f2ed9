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
(figures/gpu_proxy/) instead of this device's (README, Expected times).
"""

from absl import flags

from experiments import cli
from gandef_tf import GandefError, estimate, plan, report, runs
from gandef_tf.config import DATASETS, METHODS

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
    why_not = plan.refusal(todo, FLAGS.train, proceed="rerun with TRAIN=1 (or --train)")
    if why_not:
        raise GandefError(why_not)
    print(" ".join(f"run.{st.cfg.dataset}.{st.cfg.method}.{st.cfg.seed}" for st in todo))


if __name__ == "__main__":
    define_flags()
    cli.run(main)
