"""Accuracy on original and attacked test examples, and GanDef-Comb's scoring.

    from gandef_tf.evaluate import evaluate
    results = evaluate(cfg)     # reads results/ first; trains only what is missing

The paper's attacks run against the classifier alone, as in the paper; the adaptive
ones (`pgd_adaptive`, `cw_merged`) against the classifier and, for GanDef, its
discriminator, with pgd_adaptive's beta chosen per model by a small search. Per-example
predictions and discriminator scores are saved, so thresholds, the ratio curves of Fig. 4,
the worst case over attacks and the gradient-masking check are recomputed from
`predictions.npz` without a new attack; a finished evaluation that lacks some of
cfg.eval_attacks is extended with those alone.
"""

import dataclasses
import time

import keras
import numpy as np
import tensorflow as tf

from gandef_tf import GandefError, plan, runs
from gandef_tf.attacks import make_attack, spec_for
from gandef_tf.config import deviations
# comb_correct, load_predictions and score live in scoring.py (no TensorFlow there, for
# the renderers); they stay importable from here.
from gandef_tf.scoring import comb_correct, load_predictions, names, robustness, score
from gandef_tf.training import get_strategy, load_data, train

BETA_GRID = (0.3, 1.0, 3.0, 10.0)
BETA_SEARCH_EXAMPLES = 100
# Fields of results.json that describe the predictions, kept when a run is extended.
PROVENANCE_KEYS = ("commit", "date", "tensorflow", "keras", "cleverhans", "numpy", "python",
                   "device")


def predict(classifier, discriminator, x, y, cfg, attacks=None, verbose=1, strategy=None,
            beta=None):
    """{'labels', 'pred_<a>', 'disc_<a>'} for each name in attacks ('original' included
    when named; default: 'original' and cfg.eval_attacks); `beta` is pgd_adaptive's. A
    tf.distribute strategy splits each attacked batch across its replicas."""
    out = {"labels": np.asarray(y, np.int32)}
    for name in ["original", *cfg.eval_attacks] if attacks is None else attacks:
        spec = None if name == "original" else spec_for(cfg, name)
        if spec is not None and spec.kind == "pgd_adaptive" and beta is not None:
            spec = dataclasses.replace(spec, beta=beta)
        attack = None if spec is None else make_attack(classifier, spec, strategy, discriminator)
        preds, scores = [], []
        bar = keras.utils.Progbar(len(x), verbose=verbose, unit_name="example")
        if verbose:
            print(f"[{cfg.preset}] {cfg.dataset}/{cfg.method}: {name}")
        for i in range(0, len(x), cfg.eval_batch_size):
            xb, yb = x[i:i + cfg.eval_batch_size], y[i:i + cfg.eval_batch_size]
            xb = xb if attack is None else attack(xb, yb)
            z = classifier(tf.convert_to_tensor(xb), training=False)
            preds.append(np.argmax(z.numpy(), axis=1))
            if discriminator is not None:
                scores.append(tf.sigmoid(discriminator(z, training=False))[:, 0].numpy())
            bar.add(len(xb))
        out[f"pred_{name}"] = np.concatenate(preds).astype(np.int32)
        if discriminator is not None:
            out[f"disc_{name}"] = np.concatenate(scores).astype(np.float32)
    return out


def search_beta(classifier, discriminator, x, y, cfg, grid=BETA_GRID, strategy=None,
                verbose=1):
    """results.json's `adaptive`: pgd_adaptive's beta minimising GanDef-Comb's accuracy
    on a seeded subset of at most BETA_SEARCH_EXAMPLES test examples (ties: lower plain
    accuracy, then the smaller beta), with the accuracies of the whole grid."""
    restarts = spec_for(cfg, "pgd_adaptive").restarts
    if discriminator is None:
        return {"beta": None, "restarts": restarts, "note": "no discriminator: no beta term"}
    n = min(BETA_SEARCH_EXAMPLES, len(x))
    idx = np.sort(np.random.default_rng(cfg.seed).choice(len(x), n, replace=False))
    search = {}
    for beta in grid:
        p = predict(classifier, discriminator, x[idx], y[idx], cfg, ["pgd_adaptive"], 0,
                    strategy, beta)
        right = p["pred_pgd_adaptive"] == p["labels"]
        comb = comb_correct(p["pred_pgd_adaptive"], p["labels"], p["disc_pgd_adaptive"],
                            cfg.threshold, adversarial=True)
        search[f"{beta:g}"] = {"comb_accuracy": float(comb.mean()), "accuracy": float(right.mean())}
    best = min(grid, key=lambda b: (search[f"{b:g}"]["comb_accuracy"],
                                    search[f"{b:g}"]["accuracy"], b))
    if verbose:
        print(f"[{cfg.preset}] pgd_adaptive beta search on {n} examples: "
              + "  ".join(f"beta {k}: comb {100 * v['comb_accuracy']:.1f}%"
                          for k, v in search.items()) + f"  -> beta {best:g}")
    return {"beta": best, "restarts": restarts, "search": search, "search_examples": n,
            "threshold": cfg.threshold}


def descriptions(cfg, predictions):
    """{attack: '80 steps, 5 restarts'} for the masking flags."""
    return {n: spec_for(cfg, n).describe() for n in names(predictions) if n != "original"}


def results_dict(cfg, predictions, train_seconds, eval_seconds, old=None, extra=None):
    """results.json; with `old` (a run being extended or re-scored) its provenance and
    its `adaptive` / `extensions` records are kept."""
    threshold = cfg.threshold if cfg.is_gandef else None
    acc, comb = score(predictions, threshold)
    res = {"preset": cfg.preset, "dataset": cfg.dataset, "method": cfg.method,
           "seed": cfg.seed, "n_test": int(len(predictions["labels"])), "accuracy": acc,
           "train_seconds": round(train_seconds, 1), "eval_seconds": round(eval_seconds, 1),
           "deviations": deviations(cfg), "config": cfg.to_dict(), **runs.provenance(),
           "robustness": robustness(predictions, descriptions(cfg, predictions), threshold)}
    if cfg.tag:
        res["tag"] = cfg.tag
    if old:
        res.update({k: old[k] for k in PROVENANCE_KEYS + ("adaptive", "extensions") if k in old})
    res.update(extra or {})
    if comb is not None:
        res["comb"] = {"threshold": cfg.threshold, "accuracy": comb}
    return res


def _models(cfg, st, verbose, strategy, allow_train):
    """(classifier, discriminator, train_seconds) for the attacks st lacks: the finished
    models (train() reuses them), else trained, once plan.refusal lets that start."""
    why_not = plan.refusal([st], allow_train)
    if why_not:
        raise GandefError(why_not)
    return train(cfg, verbose=verbose, strategy=strategy)


def evaluate(cfg, verbose=1, strategy="default", allow_train=False):
    """Attack, score, save; results first. A finished evaluation is reused and its files
    left as they are, with or without its model; re-scored from its predictions when only
    the threshold changed; extended with the attacks of cfg.eval_attacks it lacks (the
    finished attacks' predictions are kept as they are), loading its model, or training
    one when none exists. Retraining over saved results, or work estimated above
    estimate.LIMIT_S, is refused with one line unless allow_train (the CLI's --train);
    a retrained run is evaluated afresh on every attack."""
    rdir_results = runs.results_dir(cfg)
    res_path, pred_path = rdir_results / "results.json", rdir_results / "predictions.npz"
    st = plan.status(cfg)
    if st.work == "none":
        return st.old
    saved = load_predictions(pred_path) if pred_path.exists() else {}
    old = st.old if saved else None  # its provenance describes predictions, none here
    missing, train_seconds = st.missing, (old or {}).get("train_seconds", 0.0)
    if missing:
        classifier, discriminator, train_seconds = _models(cfg, st, verbose, strategy,
                                                           allow_train)
        if st.work == "retrain":  # a new model: no old prediction belongs to it
            old, saved, missing = None, {}, ["original", *cfg.eval_attacks]
    extra, seconds = {}, 0.0
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
            beta = extra["adaptive"]["beta"]
        new = predict(classifier, discriminator, x_test, y_test, cfg, missing, verbose, dist,
                      beta)
        seconds = time.time() - start
        if saved:  # the finished attacks stay exactly as they were
            extra["extensions"] = (old or {}).get("extensions", []) + [{
                "attacks": missing, "eval_seconds": round(seconds, 1),
                **{k: v for k, v in runs.provenance().items() if k in PROVENANCE_KEYS}}]
        saved = {**saved, **{k: v for k, v in new.items() if k not in saved}}
        runs.save_npz(pred_path, **saved)
    eval_seconds = (old or {}).get("eval_seconds", 0.0) + seconds
    res = results_dict(cfg, saved, train_seconds, eval_seconds, old, extra)
    runs.write_json(res_path, res)
    return res
