"""Retrain a committed run whose model is not on this machine, and check that the new model
is the one that made the committed results, so that new attacks may extend them.

    python -m experiments.reproduce --preset=quick --dataset=mnist --method=gandef --seed=0 \
        --threads=1 --train
    python -m experiments.evaluate --preset=quick --dataset=mnist --method=gandef --seed=0 \
        --eval_attacks=fgsm,bim,pgd1,pgd2,pgd_adaptive,cw_merged,apgd_ce,apgd_dlr

Models live in $GANDEF_RUNS_DIR, results in git: a fresh clone (or a new machine) has the
results but not the models, so it could only add an attack (APGD, say) by retraining and
re-evaluating everything, which replaces the committed numbers. Training is seeded and, on
one CPU thread, repeatable bit for bit on the same kind of CPU; so this retrains the run
(and first its shared pre-training, if it has one and its model is missing) and checks it
against the committed history (below: how). Identical:
`experiments.evaluate` then extends the committed results with the attacks they lack
(keeping every committed prediction), and its extension record names the reproduction.
Different: one error line says where, and no evaluation can use that model. The committed
files are never written. An interrupted reproduction resumes from its last epoch, but a
resumed training need not repeat an uninterrupted one bit for bit; if the check then fails,
the next call starts afresh (the folder was moved aside). A committed run that was itself
stopped after epoch k and resumed is repeated by stopping and resuming there too:
automatically where its config.json records `resumed_after` (training records it since
2026-11-27), else by `--stop_after=k`, then the same command without it (the mismatch line
suggests this when the first k epochs agree).

    from experiments.reproduce import reproduce
    from gandef_tf.config import get_config
    reproduce(get_config("quick", "mnist", "gandef", seed=0), allow_train=True)

The retraining writes its history and curve inside the run folder (never into results/),
and they are compared with the committed history.csv (every column but the wall-clock
seconds) and curve.csv. Identical: reproduced.json is written beside the model. Different:
the run folder is moved aside, so that no evaluation can use that model, and one error line
says where the two first differ. A run whose config.json records its thread count is
retrained with that count (another is refused).

A shared pre-training (tag 'pretrain') has no results of its own, only its committed
config.json and history.csv; it is reproduced the same way, first, whenever a run that
starts from it is reproduced, or trained or evaluated by a command on a machine without
its model (pretraining()), so that every method of a seed starts from the pre-training
its records name. gandef_tf.training itself trains a missing pre-training: reproducing a
committed one is this layer's decision.
"""

import contextlib
import os
import time
from pathlib import Path

from absl import flags

from experiments import cli
from experiments.plan import refusal
from gandef_tf import GandefError, plan, runs
from gandef_tf.config import Config, pretrain_config

FLAGS = flags.FLAGS


IGNORED = {"seconds"}  # wall-clock time differs on every run


def _rows(path):
    return [{k: v for k, v in r.items() if k not in IGNORED} for r in runs.read_csv(path)]


def first_difference(committed, retrained, threads_known=True):
    """None when every committed history.csv / curve.csv equals its retrained one (but
    for the seconds column), else the first place where they differ, in words, with the
    likely cause: a stop and resume when earlier epochs agree, else (threads_known False)
    training on several threads."""
    for name in ("history.csv", "curve.csv"):
        old_path, new_path = Path(committed) / name, Path(retrained) / name
        if not old_path.exists():
            continue
        if not new_path.exists():
            return f"the retraining wrote no {name}"
        old, new = _rows(old_path), _rows(new_path)
        for i, (a, b) in enumerate(zip(old, new)):
            keys = [k for k in a if a[k] != b.get(k)]
            if keys:
                hint = "" if name != "history.csv" or i == 0 else (
                    f"; epochs 1-{i} are identical, so the committed run was probably stopped "
                    f"after epoch {i} and resumed (a resumed run draws its data order and "
                    f"random starts afresh): to repeat that, run with --stop_after={i}, then "
                    "again without it")
                if not hint and not threads_known:
                    hint = ("; its thread count is not recorded, and a run trained on more "
                            "than one thread cannot be repeated")
                return (f"{name} row {i + 1}, {keys[0]}: committed {a[keys[0]]}, "
                        f"retrained {b.get(keys[0])}{hint}")
        if len(old) != len(new):
            return f"{name} has {len(old)} committed rows and {len(new)} retrained ones"
    return None


def committed(cfg):
    """The config (a dict) of cfg's committed run, or None: its results.json's; for a
    shared pre-training, which has no results, its config.json's once its history.csv holds
    every epoch (a shorter one is a pre-training still under way, resumed as it is)."""
    resdir = runs.results_dir(cfg)
    if (resdir / "results.json").exists():
        return runs.read_json(resdir / "results.json")["config"]
    if cfg.tag == "pretrain" and (resdir / "config.json").exists() and \
            len(runs.read_csv(resdir / "history.csv")) >= cfg.epochs:
        return runs.read_json(resdir / "config.json")["config"]
    return None


@contextlib.contextmanager
def _results_in(folder):
    """Results written under folder meanwhile (GANDEF_RESULTS_DIR), never into results/."""
    before = os.environ.get("GANDEF_RESULTS_DIR")
    os.environ["GANDEF_RESULTS_DIR"] = str(folder)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("GANDEF_RESULTS_DIR")
        else:
            os.environ["GANDEF_RESULTS_DIR"] = before


def reproduce(cfg, verbose=0, allow_train=False, stop_after=0):
    """Retrain cfg's committed run into its run folder and check it; returns the record
    written to reproduced.json, or raises GandefError (run folder moved aside). stop_after=k
    stops after epoch k, unchecked, and returns None; the next call resumes from there in
    its own process, as the committed run did if it was stopped there (a run whose
    config.json records `resumed_after` is stopped and resumed there without asking)."""
    resdir, rdir = runs.results_dir(cfg), runs.run_dir(cfg)
    stored = committed(cfg)
    if stored is None:
        raise GandefError(f"{resdir} holds no results to reproduce; train it with "
                          "experiments.evaluate")
    if not runs.same_run(Config.from_dict(stored), cfg):
        raise GandefError(f"{resdir} was made with another config than these flags give")
    if (rdir / "reproduced.json").exists():
        return runs.read_json(rdir / "reproduced.json")
    if (rdir / "train.json").exists():
        raise GandefError(f"{rdir} already holds a finished model (not a reproduction): "
                          "evaluate extends the results with it as it is")
    info = runs.read_json(resdir / "config.json") if (resdir / "config.json").exists() else {}
    trained, resumed = info.get("threads"), info.get("resumed_after", [])
    if trained and runs.intra_op_threads(trained) != runs.intra_op_threads(runs.threads()):
        raise GandefError(f"{resdir} was trained with {runs.intra_op_threads(trained)} "
                          f"TensorFlow thread(s), this process has "
                          f"{runs.intra_op_threads(runs.threads())}: pass "
                          f"--threads={runs.intra_op_threads(trained)}")
    if info.get("onednn") is not None and info["onednn"] != runs.onednn():
        raise GandefError(f"{resdir} was trained with TensorFlow's oneDNN kernels "
                          f"{'on' if info['onednn'] else 'off'}, this process has them "
                          f"{'on' if runs.onednn() else 'off'}: set "
                          f"TF_ENABLE_ONEDNN_OPTS={int(info['onednn'])}")
    if stop_after and not 0 < stop_after < cfg.epochs:
        raise GandefError(f"stop_after must be between 1 and {cfg.epochs - 1}, got {stop_after}")
    scratch = rdir / "reproduce"  # the retraining's results/, inside the run folder
    with _results_in(scratch):
        why_not = refusal([plan.status(cfg, train_only=True)], allow_train)
    if why_not:
        raise GandefError(why_not)
    from gandef_tf import training  # TensorFlow, once a retraining is to start

    pre = pretrain_config(cfg)
    if pre is not None and not (runs.run_dir(pre) / "train.json").exists() and committed(pre):
        # before the results are redirected to the scratch folder, where the committed
        # pre-training's record is out of sight
        reproduce(pre, verbose=verbose, allow_train=True)  # priced in the refusal above
    start = time.time()
    with _results_in(scratch):
        if stop_after:
            return training.train(cfg, verbose=verbose, stop_after=stop_after)
        for k in resumed:  # stopped and resumed where the committed run was
            if runs.checkpoint_epoch(rdir) < k:
                training.train(cfg, verbose=verbose, stop_after=k)
        seconds = training.train(cfg, verbose=verbose)[2]
        retrained = runs.results_dir(cfg)
    diff = first_difference(resdir, retrained, threads_known=bool(trained))
    if diff:
        aside = rdir.with_name(f"{rdir.name}.mismatch-{time.strftime('%Y%m%dT%H%M%S')}")
        rdir.rename(aside)
        shared = "" if cfg.tag != "pretrain" else (
            "; the committed runs of this seed started from the committed pre-training, so "
            f"a new one would not be theirs: to train from a new draw anyway, move {resdir} "
            "away and retrain every method of the seed")
        raise GandefError(f"the retrained model is not the committed one ({diff}); "
                          f"{resdir} is untouched, the retrained run moved to {aside}{shared}")
    # where this retraining was stopped and resumed (asked for, or as recorded)
    stops = runs.read_json(retrained / "config.json").get("resumed_after", [])
    record = {"results": str(resdir), "compared": ["history.csv", "curve.csv"],
              "identical": True, "resumed_after": stops, "train_seconds": round(seconds, 1),
              "wall_seconds": round(time.time() - start, 1), **runs.provenance()}
    runs.write_json(rdir / "reproduced.json", record)
    return record


def pretraining(cfg, verbose=0):
    """Before a command trains cfg's run from scratch: reproduce (and check) the committed
    shared pre-training it starts from when that model is not on this machine, rather than
    let training.train draw a new one that the seed's committed runs did not start from."""
    pre, rdir = pretrain_config(cfg), runs.run_dir(cfg)
    if pre is None or (rdir / "train.json").exists() or runs.checkpoint_epoch(rdir):
        return
    if not (runs.run_dir(pre) / "train.json").exists() and committed(pre):
        reproduce(pre, verbose=verbose, allow_train=True)


def main(argv):
    cfg = cli.config_from_flags()
    rec = reproduce(cfg, verbose=cli.FLAGS.verbose, allow_train=cli.FLAGS.train,
                    stop_after=FLAGS.stop_after)
    if rec is None:
        print(f"[{cfg.preset}] {cfg.dataset}/{cfg.method}/seed{cfg.seed}: stopped after epoch "
              f"{FLAGS.stop_after} as asked; run again without --stop_after to resume and check")
        return
    print(f"[{cfg.preset}] {cfg.dataset}/{cfg.method}/seed{cfg.seed}: reproduced "
          f"({rec['date']}): history.csv and curve.csv identical to {rec['results']}; "
          "experiments.evaluate now extends its results")


if __name__ == "__main__":
    cli.define_run_flags()
    flags.DEFINE_integer("stop_after", 0, "Stop the retraining after this epoch (0: run it "
                         "through), to repeat a committed run that was stopped and resumed there.")
    cli.run(main)
