"""Accuracy on original and attacked test examples, and GanDef-Comb's scoring.

    from gandef_tf.evaluate import evaluate
    results = evaluate(cfg)     # trains first if needed; writes results.json, predictions.npz

Attacks run against the classifier alone, as in the paper. Per-example predictions and
discriminator scores are saved, so thresholds and the ratio curves of Fig. 4 are
recomputed from `predictions.npz` without a new attack.
"""

import time

import keras
import numpy as np
import tensorflow as tf

from gandef_tf import GandefError, runs
from gandef_tf.attacks import make_attack, spec_for
from gandef_tf.config import deviations
from gandef_tf.training import get_strategy, load_data, train


def predict(classifier, discriminator, x, y, cfg, attacks=None, verbose=1, strategy=None):
    """{'labels', 'pred_<a>', 'disc_<a>'} for 'original' and each attack name; a
    tf.distribute strategy splits each attacked batch across its replicas."""
    out = {"labels": np.asarray(y, np.int32)}
    for name in ["original"] + list(cfg.eval_attacks if attacks is None else attacks):
        attack = (None if name == "original"
                  else make_attack(classifier, spec_for(cfg, name), strategy))
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


def comb_correct(pred, labels, disc, threshold, adversarial):
    """REFERENCE.md section 2: an original example must be classified right AND pass the
    discriminator; an adversarial one counts when classified right OR rejected."""
    right = pred == labels
    flagged = disc >= threshold
    return right | flagged if adversarial else right & ~flagged


def score(predictions, threshold=None):
    """(accuracy dict, comb accuracy dict or None) from saved predictions."""
    labels = predictions["labels"]
    names = [k[len("pred_"):] for k in predictions if k.startswith("pred_")]
    acc = {n: float(np.mean(predictions[f"pred_{n}"] == labels)) for n in names}
    if threshold is None or "disc_original" not in predictions:
        return acc, None
    if not 0 <= threshold <= 1:
        raise GandefError(f"threshold must be in [0, 1], got {threshold}")
    comb = {n: float(np.mean(comb_correct(predictions[f"pred_{n}"], labels,
                                          predictions[f"disc_{n}"], threshold,
                                          adversarial=n != "original")))
            for n in names}
    return acc, comb


def load_predictions(path):
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as e:
        raise GandefError(f"cannot read predictions {path} ({e})") from None


def results_dict(cfg, predictions, train_seconds, eval_seconds):
    acc, comb = score(predictions, cfg.threshold if cfg.is_gandef else None)
    res = {"preset": cfg.preset, "dataset": cfg.dataset, "method": cfg.method,
           "seed": cfg.seed, "n_test": int(len(predictions["labels"])), "accuracy": acc,
           "train_seconds": round(train_seconds, 1), "eval_seconds": round(eval_seconds, 1),
           "deviations": deviations(cfg), "config": cfg.to_dict(), **runs.provenance()}
    if comb is not None:
        res["comb"] = {"threshold": cfg.threshold, "accuracy": comb}
    return res


def evaluate(cfg, verbose=1, strategy="default"):
    """Train if needed, attack, score, save; a finished evaluation is reused (re-scored
    from its predictions when only the threshold changed)."""
    rdir_results = runs.results_dir(cfg)
    res_path, pred_path = rdir_results / "results.json", rdir_results / "predictions.npz"
    classifier, discriminator, train_seconds = train(cfg, verbose=verbose, strategy=strategy)
    if res_path.exists() and pred_path.exists():
        old = runs.read_json(res_path)
        if set(old.get("accuracy", {})) == {"original", *cfg.eval_attacks}:
            if old.get("comb", {}).get("threshold", cfg.threshold) == cfg.threshold:
                return old
            new = results_dict(cfg, load_predictions(pred_path), train_seconds, old["eval_seconds"])
            runs.write_json(res_path, new)
            return new
    _, (x_test, y_test) = load_data(cfg)
    start = time.time()
    predictions = predict(classifier, discriminator, x_test, y_test, cfg, verbose=verbose,
                          strategy=get_strategy(strategy))
    res = results_dict(cfg, predictions, train_seconds, time.time() - start)
    runs.save_npz(pred_path, **predictions)
    runs.write_json(res_path, res)
    return res
