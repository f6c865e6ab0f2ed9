"""What a run still needs, read from results/ and runs/ before anything is loaded or trained.

    from gandef_tf import plan
    st = plan.status(cfg)          # st.work: none | rescore | evaluate | train | retrain
    st.seconds()                   # its estimated time on this device (gandef_tf.estimate)

Rendering needs only results/: a run whose results.json and predictions.npz hold every
attack of cfg.eval_attacks, made with the same config (eval-only fields aside), needs no
model and no work. A run that lacks attacks is evaluated when its model is on this
machine or committed beside its results (gandef_tf.committed); when neither, the run
would have to be retrained, which replaces committed results. Whether work may start (a
retraining, or work estimated above estimate.LIMIT_S on this device) is the commands'
decision: experiments.plan.refusal.
"""

import dataclasses
from typing import Optional

import numpy as np

from gandef_tf import GandefError, committed, runs
from gandef_tf.config import EVAL_ONLY_FIELDS, Config
from gandef_tf.scoring import VERSION


@dataclasses.dataclass
class Status:
    cfg: Config
    old: Optional[dict]  # results.json, when there is one
    missing: list  # of ["original", *cfg.eval_attacks], the ones predictions.npz lacks
    model: bool  # the finished models are in runs/
    epoch: int  # the last checkpointed epoch of an unfinished training (0: none)
    train_only: bool = False  # the work asked for is training alone (experiments.train)

    @property
    def has_results(self):
        return self.old is not None or len(self.missing) < 1 + len(self.cfg.eval_attacks)

    @property
    def work(self):
        if self.train_only:
            return "none" if self.model else "retrain" if self.has_results else "train"
        if not self.missing:
            return "none" if up_to_date(self.old, self.cfg) else "rescore"
        if self.model:
            return "evaluate"
        return "retrain" if self.has_results else "train"

    def name(self):
        return str(runs.results_dir(self.cfg))

    def seconds(self, rate=None):
        """Estimated seconds of this run's work on this device (0 for none / rescore)."""
        from gandef_tf import estimate

        rate = rate or estimate.device_rate()
        work = self.work
        if work in ("none", "rescore"):
            return 0.0
        if work == "evaluate":
            return estimate.eval_seconds(self.cfg, self.missing, rate)
        attacks = [] if self.train_only else ["original", *self.cfg.eval_attacks]
        epoch = self.epoch if work == "train" else 0
        return (estimate.train_seconds(self.cfg, rate, epoch)
                + estimate.eval_seconds(self.cfg, attacks, rate))


def up_to_date(old, cfg):
    """results.json scored at cfg's threshold by this version of scoring.py's rules."""
    if old is None:
        return False
    same_tau = old.get("comb", {}).get("threshold", cfg.threshold) == cfg.threshold
    return same_tau and "robustness" in old and old.get("scoring_version", 1) == VERSION


def saved_attacks(path):
    """The attack names predictions.npz holds, without reading its arrays."""
    if not path.exists():
        return set()
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k[len("pred_"):] for k in z.files if k.startswith("pred_")}
    except Exception as e:  # any unreadable file: say which, do not guess
        raise GandefError(f"cannot read predictions {path} ({type(e).__name__}: {e})") from None


def _check_config(old, cfg, where):
    stored = (old or {}).get("config")
    if not stored:
        return
    try:
        stored_cfg = Config.from_dict(stored)
    except (GandefError, TypeError) as e:
        raise GandefError(f"{where}/results.json holds an unreadable config ({e})") from None
    if not runs.same_run(stored_cfg, cfg):
        diff = sorted(k for k, v in cfg.to_dict().items()
                      if stored_cfg.to_dict().get(k) != v and k not in EVAL_ONLY_FIELDS)
        raise GandefError(f"{where} holds a run made with another config (differs in "
                          f"{', '.join(diff)}); use another --seed, set GANDEF_RESULTS_DIR, "
                          "or move that folder away")


def status(cfg, train_only=False):
    """The Status of cfg's run from its files alone (no TensorFlow, no model loaded)."""
    rdir, resdir = runs.run_dir(cfg), runs.results_dir(cfg)
    old = runs.read_json(resdir / "results.json") if (resdir / "results.json").exists() else None
    _check_config(old, cfg, resdir)
    saved = saved_attacks(resdir / "predictions.npz")
    missing = [n for n in ["original", *cfg.eval_attacks] if n not in saved]
    model = (rdir / "train.json").exists() or bool(committed.recorded(cfg))
    epoch = 0
    if not model and (rdir / "checkpoint.npz").exists():
        try:
            with np.load(rdir / "checkpoint.npz", allow_pickle=False) as z:
                epoch = int(z["epoch"])
        except Exception:  # training reports a corrupt checkpoint itself, in its words
            epoch = 0
    return Status(cfg, old, missing, model, epoch, train_only)
