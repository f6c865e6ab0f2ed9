"""Scores from saved predictions (numpy only): accuracy, GanDef-Comb, the worst case over
attacks, the gradient-masking check, the discriminator's ROC and the threshold choice.

    from gandef_tf import scoring
    pred = scoring.load_predictions("results/quick/mnist/gandef/seed0/predictions.npz")
    acc, comb = scoring.score(pred, threshold=0.5)
    print(scoring.robustness(pred, threshold=0.5)["masking_flags"])
    fpr, tpr, taus = scoring.roc(pred["disc_original"], pred["disc_pgd2"])

No attack is run here: everything is recomputed from `predictions.npz` (labels,
pred_<attack>, disc_<attack>, and idx_<attack> for an attack run on a subset of the test
examples: the indices into labels of the examples its arrays hold), so renderers need
neither TensorFlow nor a model. Two attacks are compared, and the worst case is taken,
on the examples every attack involved was run on.
"""

import numpy as np

from gandef_tf import GandefError

# results.json records the version of the rules below that scored it; a run scored by an
# older one is re-scored from its predictions.npz (plan: work "rescore", no model needed).
# 1: masking pairs in a fixed order; 2: pairs ordered by the attacks' steps, PGD-2 vs BIM.
VERSION = 2

# (stronger, weaker): the stronger has more steps, restarts or a margin loss, so a model
# more accurate under it than under the weaker is suspect of gradient masking. A pair
# whose "stronger" attack takes fewer steps in a dataset's registry is no such pair there
# (CIFAR-10: PGD-1 has 7 steps, BIM 10 of the same size), so masking_flags skips it when
# told the steps; PGD-2 vs BIM covers BIM there.
CLASSIFIER_PAIRS = (("pgd2", "pgd1"), ("pgd1", "bim"), ("pgd2", "bim"), ("bim", "fgsm"),
                    ("apgd_ce", "pgd2"), ("apgd_dlr", "pgd2"))
ADAPTIVE_PAIRS = (("pgd_adaptive", "pgd2"), ("cw_merged", "pgd2"))
MASKING_SE = 2.0  # a flag needs a difference above this many paired standard errors
MASKING_RULE = ("flagged when accuracy under the stronger attack exceeds that under the "
                f"weaker by more than {MASKING_SE:g} paired standard errors of the difference "
                "(same examples; the SE comes from the examples right under one attack only)")


def load_predictions(path):
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as e:
        raise GandefError(f"cannot read predictions {path} ({e})") from None


def names(predictions):
    """'original' and the attacks, in the order they were saved."""
    return [k[len("pred_"):] for k in predictions if k.startswith("pred_")]


def attacks(predictions):
    return [n for n in names(predictions) if n != "original"]


def comb_correct(pred, labels, disc, threshold, adversarial):
    """REFERENCE.md section 2: an original example must be classified right AND pass the
    discriminator; an adversarial one counts when classified right OR rejected."""
    right = pred == labels
    flagged = disc >= threshold
    return right | flagged if adversarial else right & ~flagged


def _check_threshold(threshold):
    if not 0 <= threshold <= 1:
        raise GandefError(f"threshold must be in [0, 1], got {threshold}")


def examples(predictions, name):
    """Indices into `labels` of the examples `name` was evaluated on (all, unless it ran
    on a subset)."""
    idx = predictions.get(f"idx_{name}")
    return np.arange(len(predictions["labels"])) if idx is None else np.asarray(idx)


def standard_error(right):
    """Standard error of an accuracy over independent examples: sqrt(p (1 - p) / n)."""
    right = np.asarray(right, float)
    return float(np.sqrt(right.mean() * (1 - right.mean()) / len(right))) if len(right) else None


def correct(predictions, name, threshold=None):
    """Per-example correctness under `name` (on its own examples): the classifier's, or
    GanDef-Comb's rule."""
    labels, pred = predictions["labels"][examples(predictions, name)], predictions[f"pred_{name}"]
    if threshold is None:
        return pred == labels
    return comb_correct(pred, labels, predictions[f"disc_{name}"], threshold,
                        adversarial=name != "original")


def standard_errors(predictions, threshold=None):
    """{name: standard error of its accuracy} (GanDef-Comb's with a threshold)."""
    return {n: standard_error(correct(predictions, n, threshold)) for n in names(predictions)}


def common(predictions, names_, threshold=None):
    """(indices of the examples every name was evaluated on, [len(names_), n] correctness
    on them, in that order)."""
    idx = [examples(predictions, n) for n in names_]
    shared = idx[0]
    for i in idx[1:]:
        shared = np.intersect1d(shared, i)
    rows = [correct(predictions, n, threshold)[np.intersect1d(shared, i, return_indices=True)[2]]
            for n, i in zip(names_, idx)]
    return shared, np.array(rows, bool).reshape(len(names_), len(shared))


def score(predictions, threshold=None):
    """(accuracy dict, comb accuracy dict or None) from saved predictions."""
    acc = {n: float(np.mean(correct(predictions, n))) for n in names(predictions)}
    if threshold is None or "disc_original" not in predictions:
        return acc, None
    _check_threshold(threshold)
    comb = {n: float(np.mean(correct(predictions, n, threshold))) for n in names(predictions)}
    return acc, comb


# --- worst case and the gradient-masking check ----------------------------------------

def worst_case(predictions, threshold=None, with_examples=False):
    """Fraction of examples right under EVERY attack (GanDef-Comb's rule with a
    threshold), over the examples every attack ran on; None without attacks (or shared
    examples). with_examples: (fraction, number of those examples, standard error)."""
    names_ = attacks(predictions)
    shared, right = common(predictions, names_, threshold) if names_ else ((), None)
    value = float(np.mean(np.all(right, axis=0))) if len(shared) else None
    if not with_examples:
        return value
    return value, len(shared), standard_error(np.all(right, axis=0)) if len(shared) else None


def fall_to_worst_case(predictions, threshold=None):
    """From the paper's strongest attack to the worst case, on the SAME examples (those
    every attack ran on): {'examples', 'attacks' (their number), 'pgd2', 'worst_case',
    'strongest' (the strongest single attacks there, ties included), 'strongest_accuracy'},
    accuracies as fractions (GanDef-Comb's rule with a threshold); None without PGD-2 or
    without an example that every attack ran on."""
    names_ = attacks(predictions)
    if "pgd2" not in names_:
        return None
    shared, right = common(predictions, names_, threshold)
    if not len(shared):
        return None
    acc = right.sum(axis=1)  # counts: ties are exact
    return {"examples": len(shared), "attacks": len(names_),
            "pgd2": float(acc[names_.index("pgd2")] / len(shared)),
            "worst_case": float(np.mean(np.all(right, axis=0))),
            "strongest": [n for n, a in zip(names_, acc) if a == acc.min()],
            "strongest_accuracy": float(acc.min() / len(shared))}


def masking_flags(predictions, descriptions=None, threshold=None, steps=None):
    """Readable flags, e.g. 'pgd2 (80 steps) 85.2% > pgd1 (40 steps) 84.0% (...)', each
    pair compared on the examples both ran on; with steps ({attack: iterations}) a
    classifier pair whose stronger attack has fewer steps than the weaker is skipped.

    The classifier's accuracy is checked on CLASSIFIER_PAIRS and ADAPTIVE_PAIRS; with a
    discriminator and a threshold, ADAPTIVE_PAIRS also on GanDef-Comb's accuracy (the
    adaptive attacks keep PGD-2's examples as a candidate, so neither may exceed PGD-2's).
    The paper's attacks and APGD ignore D, so they are not compared on Comb's accuracy:
    a stronger one may legitimately be easier to detect."""
    descriptions = descriptions or {}
    has_d = "disc_original" in predictions
    steps = steps or {}
    ordered = [(a, b) for a, b in CLASSIFIER_PAIRS
               if a not in steps or b not in steps or steps[a] >= steps[b]]
    checks = [(p, None) for p in ordered + list(ADAPTIVE_PAIRS)]
    if has_d and threshold is not None:
        checks += [(p, threshold) for p in ADAPTIVE_PAIRS]
    out = []
    for (strong, weak), tau in checks:
        if f"pred_{strong}" not in predictions or f"pred_{weak}" not in predictions:
            continue
        shared, (a, b) = common(predictions, (strong, weak), tau)
        if not len(shared):
            continue
        a, b = a.astype(float), b.astype(float)
        diff = float(np.mean(a - b))
        se = float(np.std(a - b) / np.sqrt(len(a)))
        if diff > 0 and diff > MASKING_SE * se:
            desc = lambda n: f" ({descriptions[n]})" if n in descriptions else ""
            out.append(f"{'GanDef-Comb: ' if tau is not None else ''}"
                       f"{strong}{desc(strong)} {100 * a.mean():.1f}% > {weak}{desc(weak)} "
                       f"{100 * b.mean():.1f}% (+{100 * diff:.1f} pp; {MASKING_SE:g} paired SE "
                       f"= {100 * MASKING_SE * se:.1f} pp"
                       + (f"; on the {len(shared)} examples both ran on)"
                          if len(shared) < len(predictions["labels"]) else ")"))
    return out


def robustness(predictions, descriptions=None, threshold=None, steps=None):
    """results.json's `robustness`: worst cases (with the number of examples they are
    taken over, every attack's, and their standard errors) and masking flags."""
    worst, n, se = worst_case(predictions, with_examples=True)
    out = {"attacks": attacks(predictions), "worst_case": worst, "worst_case_examples": n,
           "worst_case_se": se,
           "masking_flags": masking_flags(predictions, descriptions, threshold, steps),
           "masking_rule": MASKING_RULE}
    if threshold is not None and "disc_original" in predictions:
        out["comb_worst_case"], _, out["comb_worst_case_se"] = worst_case(
            predictions, threshold, with_examples=True)
    return out


# --- the discriminator's ROC and the threshold -----------------------------------------

def roc(negatives, positives):
    """(fpr, tpr, thresholds): an example is flagged when its score >= threshold (the
    GanDef-Comb rule); thresholds run from above every score (0, 0) down to the lowest."""
    neg, pos = np.asarray(negatives, float), np.asarray(positives, float)
    if not len(neg) or not len(pos):
        raise GandefError("an ROC needs negative and positive scores")
    taus = np.unique(np.concatenate([neg, pos]))[::-1]
    taus = np.concatenate([[np.inf], taus])
    fpr = np.array([np.mean(neg >= t) for t in taus])
    tpr = np.array([np.mean(pos >= t) for t in taus])
    return fpr, tpr, taus


def auc(fpr, tpr):
    """Area under the ROC by the trapezoid rule (ties count half, as in a rank AUC)."""
    fpr, tpr = np.asarray(fpr, float), np.asarray(tpr, float)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def tau_at_fpr(negatives, positives, target=0.05):
    """(tau, fpr, tpr) of the lowest threshold whose false-positive rate on original
    examples is at most `target`: the most adversarial examples flagged at that cost."""
    fpr, tpr, taus = roc(negatives, positives)
    ok = np.flatnonzero(fpr <= target + 1e-12)
    i = ok[-1]  # fpr grows as tau falls; the last admissible one flags the most
    tau = float(taus[i]) if np.isfinite(taus[i]) else float(np.nextafter(np.max(taus[1:]), np.inf))
    return tau, float(fpr[i]), float(tpr[i])


def tau_grid(predictions, attack, step=0.01):
    """0..1 in `step`s plus every saved score of original and `attack` examples: the
    scores are where GanDef-Comb's accuracies change."""
    grid = np.round(np.arange(0.0, 1.0 + step / 2, step), 10)
    scores = np.concatenate([predictions["disc_original"], predictions[f"disc_{attack}"]])
    return np.unique(np.clip(np.concatenate([grid, scores.astype(float)]), 0.0, 1.0))


def comb_accuracies(predictions, attack, taus):
    """(original, adversarial) GanDef-Comb accuracies in % for every threshold in taus."""
    orig = [np.mean(correct(predictions, "original", t)) for t in taus]
    adv = [np.mean(correct(predictions, attack, t)) for t in taus]
    return 100.0 * np.array(orig), 100.0 * np.array(adv)


def best_tau_curve(predictions, attack, rho, taus=None):
    """(accuracy %, tau) per rho: max over tau of (1 - rho) comb_original(tau) + rho
    comb_adversarial(tau), i.e. GanDef-Comb with the threshold chosen best for each rho.
    Every fixed threshold in taus lies on or below it."""
    taus = tau_grid(predictions, attack) if taus is None else np.asarray(taus, float)
    orig, adv = comb_accuracies(predictions, attack, taus)
    rho = np.asarray(rho, float)[:, None]
    overall = (1.0 - rho) * orig[None, :] + rho * adv[None, :]
    best = np.argmax(overall, axis=1)
    return overall[np.arange(len(best)), best], taus[best]
