"""Accuracy on original and attacked test examples, and GanDef-Comb's scoring.

    from gandef_tf.evaluate import evaluate
    results = evaluate(cfg)     # reads results/ first; trains only what is missing

What may start (work priced above the limit, a retraining over saved results, a committed
model reproduced first) is decided by the command, experiments.evaluate, before this runs.

The paper's attacks run against the classifier alone, as in the paper; the adaptive
ones (`pgd_adaptive`, `cw_merged`) against the classifier and, for GanDef, its
discriminator, each the best of several candidates per example, PGD-2's own examples
among them; APGD-CE / APGD-DLR (IBM ART) against the classifier alone. These four run on
a seeded subset of cfg.strong_eval_n test examples. Per-example
predictions and discriminator scores are saved, so thresholds, the ratio curves of Fig. 4,
the worst case over attacks and the gradient-masking check are recomputed from
`predictions.npz` without a new attack; a finished evaluation that lacks some of
cfg.eval_attacks is extended with those alone.
"""

import time

import keras
import numpy as np
import tensorflow as tf

from gandef_tf import GandefError, adaptive, autoattack, committed, plan, runs
from gandef_tf.attacks import make_attack, spec_for
from gandef_tf.config import ADAPTIVE_ATTACKS, SUBSET_ATTACKS, deviations
# comb_correct, load_predictions and score live in scoring.py (no TensorFlow there, for
# the renderers); they stay importable from here.
from gandef_tf.scoring import (VERSION, comb_correct, load_predictions, names, robustness,
                               score, standard_errors)
from gandef_tf.training import get_strategy, load_data, train

# pgd_adaptive's betas: every one is a candidate per example (adaptive.CANDIDATE_RULE).
BETA_GRID = adaptive.BETA_GRID
# Fields of results.json that describe the predictions, kept when a run is extended.
PROVENANCE_KEYS = ("commit", "date", "tensorflow", "keras", "cleverhans", "numpy", "python",
                   "device")


def subset(cfg, n):
    """Sorted indices of the SUBSET_ATTACKS' examples among n: cfg.strong_eval_n of them,
    drawn by data_seed (the same for every method and seed, so columns compare), or all."""
    if cfg.strong_eval_n >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(cfg.data_seed).choice(n, cfg.strong_eval_n, replace=False))


def predict(classifier, discriminator, x, y, cfg, attacks=None, verbose=1, strategy=None,
            beta=None, on_attack=None):
    """{'labels', 'pred_<a>', 'disc_<a>'} for each name in attacks ('original' included
    when named; default: 'original' and cfg.eval_attacks). SUBSET_ATTACKS run on
    subset(cfg, len(x)) and, when that is not every example, add 'idx_<a>' (its indices).
    The adaptive attacks add 'cand_<a>', the index of the candidate kept per example, into
    'candidates_<a>', their names (adaptive.CANDIDATE_RULE); PGD-2's own examples are one,
    taken from this call or from the run's saved predictions. `beta` restricts
    pgd_adaptive to one beta. A tf.distribute strategy splits each batch across replicas.
    on_attack(done), when given, is called with the arrays so far after each attack."""
    names_ = ["original", *cfg.eval_attacks] if attacks is None else list(attacks)
    autoattack.require(names_)  # before any attack: a missing ART is one error line
    done = {"labels": np.asarray(y, np.int32)}
    for name in sorted(names_, key=lambda n: n in ADAPTIVE_ATTACKS):  # PGD-2 first
        idx = subset(cfg, len(x)) if name in SUBSET_ATTACKS else np.arange(len(x))
        xs, ys = (x, np.asarray(y)) if len(idx) == len(x) else (x[idx], np.asarray(y)[idx])
        if verbose:
            print(f"[{cfg.preset}] {cfg.dataset}/{cfg.method}: {name}"
                  + (f" on {len(idx)} of {len(x)} examples" if len(idx) < len(x) else ""))
        if name in ADAPTIVE_ATTACKS:
            got = _adaptive(classifier, discriminator, xs, ys, cfg, name, strategy, beta,
                            _pgd2_candidate(cfg, done, discriminator, idx), verbose)
        else:
            spec = None if name == "original" else spec_for(cfg, name)
            attack = None if spec is None else make_attack(classifier, spec, strategy,
                                                           discriminator)
            got = _outcomes(classifier, discriminator, xs, ys, cfg, attack, verbose)
        got.update({"idx": idx.astype(np.int32)} if len(idx) < len(x) else {})
        done.update({f"{k}_{name}": v for k, v in got.items()})
        if on_attack:
            on_attack(done)
    # in the order asked for, which names() reports
    return {"labels": done["labels"], **{f"{a}_{n}": done[f"{a}_{n}"] for n in names_
                                         for a in ARRAYS if f"{a}_{n}" in done}}


ARRAYS = ("pred", "disc", "idx", "cand", "candidates")  # per attack in predictions.npz


def _outcomes(classifier, discriminator, x, y, cfg, attack, verbose):
    """{'pred', 'disc' (with a discriminator)} on (attack(x, y) or x), batch by batch."""
    preds, scores = [], []
    bar = keras.utils.Progbar(len(x), verbose=verbose, unit_name="example")
    for i in range(0, len(x), cfg.eval_batch_size):
        xb, yb = x[i:i + cfg.eval_batch_size], y[i:i + cfg.eval_batch_size]
        xb = xb if attack is None else attack(xb, yb)
        z = classifier(tf.convert_to_tensor(xb), training=False)
        preds.append(np.argmax(z.numpy(), axis=1))
        if discriminator is not None:
            scores.append(tf.sigmoid(discriminator(z, training=False))[:, 0].numpy())
        bar.add(len(xb))
    out = {"pred": np.concatenate(preds).astype(np.int32)}
    if discriminator is not None:
        out["disc"] = np.concatenate(scores).astype(np.float32)
    return out


def _pgd2_candidate(cfg, done, discriminator, idx):
    """PGD-2's outcome on examples idx, as its row scores it: from this predict call, else
    from the run's saved predictions.npz (an evaluation being extended), else None."""
    src = done
    path = runs.results_dir(cfg) / "predictions.npz"
    if "pred_pgd2" not in done and path.exists():
        src = load_predictions(path)
        if not np.array_equal(src["labels"], done["labels"]):
            return None
    keys = ("pred", "disc") if discriminator is not None else ("pred",)
    if any(f"{k}_pgd2" not in src for k in keys) or "idx_pgd2" in src:
        return None
    return {k: src[f"{k}_pgd2"][idx] for k in keys}


def _adaptive(classifier, discriminator, x, y, cfg, name, strategy, beta, pgd2, verbose):
    """An adaptive attack as the best of its candidates per example (CANDIDATE_RULE)."""
    grid = BETA_GRID if beta is None else (beta,)
    found, labels = ([pgd2], ["pgd2"]) if pgd2 is not None else ([], [])
    for label, spec in adaptive.candidate_specs(spec_for(cfg, name), discriminator is not None,
                                                grid):
        if verbose and label != name:
            print(f"[{cfg.preset}]   candidate {label}")
        attack = make_attack(classifier, spec, strategy, discriminator)
        found.append(_outcomes(classifier, discriminator, x, y, cfg, attack, verbose))
        labels.append(label)
    disc = np.stack([f["disc"] for f in found]) if discriminator is not None else None
    best = adaptive.choose(np.stack([f["pred"] != y for f in found]), disc)
    keep = lambda k: np.stack([f[k] for f in found])[best, np.arange(len(y))]
    return {**{k: keep(k) for k in found[0]}, "cand": best.astype(np.int8),
            "candidates": np.array(labels)}


def search_beta(classifier, discriminator, x, y, cfg, grid=BETA_GRID, strategy=None,
                verbose=1):
    """results.json's `adaptive`: how the adaptive attacks are built. Nothing is searched
    any more (the name stays for evaluate()): every beta of the grid is a candidate per
    example, which a choice of one beta could only weaken."""
    spec = spec_for(cfg, "pgd_adaptive")
    return {"beta": None, "betas": [float(b) for b in grid] if discriminator is not None else [],
            "restarts": spec.restarts, "examples": len(subset(cfg, len(x))),
            "rule": adaptive.CANDIDATE_RULE}


def descriptions(cfg, predictions):
    """{attack: '80 steps, 5 restarts'} for the masking flags."""
    return {n: spec_for(cfg, n).describe() for n in names(predictions) if n != "original"}


def attack_steps(cfg, predictions):
    """{attack: iterations}, so that the masking check orders attacks by their steps."""
    return {n: spec_for(cfg, n).nb_iter for n in names(predictions) if n != "original"}


def _evaluated_on(predictions):
    """results.json's `subset`: the attacks run on a subset of the test examples, how many."""
    sub = {n: int(len(predictions[f"idx_{n}"])) for n in names(predictions)
           if f"idx_{n}" in predictions}
    return {"attacks": sub, "of": int(len(predictions["labels"])),
            "drawn_by": "data_seed (the same examples for every method and seed)"} if sub else None


def _chosen(predictions):
    """{attack: {candidate: examples where it was kept}} of the adaptive attacks."""
    out = {}
    for n in names(predictions):
        if f"cand_{n}" in predictions:
            labels = [str(c) for c in predictions[f"candidates_{n}"]]
            counts = np.bincount(predictions[f"cand_{n}"].astype(int), minlength=len(labels))
            out[n] = dict(zip(labels, (int(c) for c in counts)))
    return out


def results_dict(cfg, predictions, train_seconds, eval_seconds, old=None, extra=None):
    """results.json; with `old` (a run being extended or re-scored) its provenance and
    its `adaptive` / `extensions` records are kept."""
    threshold = cfg.threshold if cfg.is_gandef else None
    acc, comb = score(predictions, threshold)
    res = {"preset": cfg.preset, "dataset": cfg.dataset, "method": cfg.method,
           "seed": cfg.seed, "n_test": int(len(predictions["labels"])), "accuracy": acc,
           "standard_error": standard_errors(predictions),
           "train_seconds": round(train_seconds, 1), "eval_seconds": round(eval_seconds, 1),
           "deviations": deviations(cfg), "config": cfg.to_dict(), **runs.provenance(),
           "scoring_version": VERSION,
           "robustness": robustness(predictions, descriptions(cfg, predictions), threshold,
                                    steps=attack_steps(cfg, predictions))}
    if sub := _evaluated_on(predictions):
        res["subset"] = sub
    if kept := _chosen(predictions):
        res["candidates_kept"] = kept
    if cfg.tag:
        res["tag"] = cfg.tag
    if old:
        keep = PROVENANCE_KEYS + ("adaptive", "extensions", "rescored", "attack_seconds",
                                  committed.KEY)
        res.update({k: old[k] for k in keep if k in old})
    res.update(extra or {})
    if comb is not None:
        res["comb"] = {"threshold": cfg.threshold, "accuracy": comb,
                       "standard_error": standard_errors(predictions, cfg.threshold)}
    return res


def rescore_record(old, cfg):
    """What a re-scoring changed (the scoring version, the threshold), when and at what
    commit; the run's own provenance stays that of its predictions."""
    rec = {"scoring_version": [old.get("scoring_version", 1), VERSION]}
    tau = old.get("comb", {}).get("threshold")
    if tau is not None and tau != cfg.threshold:
        rec["threshold"] = [tau, cfg.threshold]
    return {**rec, **{k: v for k, v in runs.provenance().items() if k in ("commit", "date")}}


def evaluate(cfg, verbose=1, strategy="default", retrain=False):
    """Attack, score, save; results first. A finished evaluation is reused and its files
    left as they are, with or without its model; re-scored from its predictions when only
    the threshold changed; extended with the attacks of cfg.eval_attacks it lacks (the
    finished attacks' predictions are kept as they are), loading its model, or training
    one when none exists. Each finished attack is saved at once, so an interrupted
    evaluation resumes with the attacks it lacks. A run with saved results but no model
    can only be retrained, which replaces them: that needs retrain=True, and the
    retrained run is evaluated afresh on every attack."""
    st = plan.status(cfg)
    if st.work == "none":
        return st.old
    if not st.missing:  # a re-scoring: no model, no attack
        return _evaluate(cfg, verbose, strategy, retrain)
    _check_retrain(st, retrain)  # before anything is made
    with runs.hold(runs.run_dir(cfg)):  # another process's work on this run: one line
        return _evaluate(cfg, verbose, strategy, retrain)


def _check_retrain(st, retrain):
    if st.work == "retrain" and not retrain:
        raise GandefError(f"{st.name()} lacks {', '.join(st.missing)} and its model is not in "
                          f"{runs.run_dir(st.cfg)}: retraining it replaces its saved results "
                          "(evaluate(cfg, retrain=True); the command: experiments.evaluate)")


def _evaluate(cfg, verbose, strategy, retrain):
    rdir_results = runs.results_dir(cfg)
    res_path, pred_path = rdir_results / "results.json", rdir_results / "predictions.npz"
    st = plan.status(cfg)  # again, now that the run is held
    if st.work == "none":
        return st.old
    saved = load_predictions(pred_path) if pred_path.exists() else {}
    old = st.old if saved else None  # its provenance describes predictions, none here
    missing, train_seconds = st.missing, (old or {}).get("train_seconds", 0.0)
    if missing:
        _check_retrain(st, retrain)
        classifier, discriminator, train_seconds = train(cfg, verbose=verbose, strategy=strategy)
        if st.work == "retrain":  # a new model: no old prediction belongs to it
            old, saved, missing = None, {}, ["original", *cfg.eval_attacks]
    extra = {}
    if st.work == "rescore" and old:
        extra["rescored"] = old.get("rescored", []) + [rescore_record(old, cfg)]
    if missing:
        _, (x_test, y_test) = load_data(cfg)
        if saved and not np.array_equal(saved["labels"], y_test):
            raise GandefError(f"{pred_path} was made on another test set; move it away")
        start = time.time()
        dist = get_strategy(strategy)
        beta = (old or {}).get("adaptive", {}).get("beta")
        if "pgd_adaptive" in missing:
            extra["adaptive"] = search_beta(classifier, discriminator, x_test, y_test, cfg,
                                            strategy=dist, verbose=verbose)
            extra["adaptive"]["search_seconds"] = round(time.time() - start, 1)
            beta = extra["adaptive"]["beta"]
        finished, clock = saved, [time.time()]
        # an extension keeps the committed run's training time; a reproduction's own time
        # goes into its extension record, beside the reproduction it names
        model_seconds, train_seconds = train_seconds, (old or {}).get("train_seconds",
                                                                       train_seconds)
        extra["attack_seconds"] = dict((old or {}).get("attack_seconds", {}))

        def save(new):  # after each attack: an interrupted evaluation resumes after it
            for n in (n for n in missing if f"pred_{n}" in new):  # each attack's own time
                extra["attack_seconds"].setdefault(n, round(time.time() - clock[0], 1))
            clock[0] = time.time()
            merged = {**finished, **{k: v for k, v in new.items() if k not in finished}}
            ext = {}
            if finished:  # the finished attacks stay exactly as they were
                ext["extensions"] = (old or {}).get("extensions", []) + [{
                    "attacks": [n for n in missing if f"pred_{n}" in new],
                    "eval_seconds": round(time.time() - start, 1),
                    **{k: v for k, v in runs.provenance().items() if k in PROVENANCE_KEYS},
                    **(runs.reproduced(cfg, model_seconds) or committed.record(cfg))}]
            runs.save_npz(pred_path, **merged)
            res = results_dict(cfg, merged, train_seconds, (old or {}).get(
                "eval_seconds", 0.0) + time.time() - start, old, {**extra, **ext})
            runs.write_json(res_path, res)
            return res

        new = predict(classifier, discriminator, x_test, y_test, cfg, missing, verbose, dist,
                      beta, on_attack=save)
        return save(new)
    res = results_dict(cfg, saved, train_seconds, (old or {}).get("eval_seconds", 0.0), old,
                       extra)
    runs.write_json(res_path, res)
    return res
