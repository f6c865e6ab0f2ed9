"""Scores from saved predictions (beyond the paper): the worst case over attacks, the
gradient-masking flags, the discriminator's ROC / AUC / threshold at 5% FPR, and the
best-threshold curve of GanDef-Comb, on hand-made numbers."""

import numpy as np
import pytest

from gandef_tf import GandefError, scoring


def hand():
    """6 examples; rows are right (1) / wrong (0) under each attack."""
    labels = np.arange(6) % 3
    right = {"original": [1, 1, 1, 1, 1, 0], "fgsm": [1, 1, 0, 1, 0, 0],
             "pgd1": [1, 0, 1, 1, 0, 0], "pgd2": [1, 0, 1, 0, 0, 0]}
    out = {"labels": labels.astype(np.int32)}
    for k, r in right.items():
        out[f"pred_{k}"] = np.where(np.array(r, bool), labels, (labels + 1) % 3).astype(np.int32)
    return out


def test_worst_case_counts_an_example_only_if_right_under_every_attack():
    p = hand()
    assert scoring.worst_case(p) == pytest.approx(1 / 6)  # example 0 only (original ignored)
    # comb: an adversarial example also counts when flagged; flag example 3 everywhere
    for k in ("original", "fgsm", "pgd1", "pgd2"):
        p[f"disc_{k}"] = np.array([0, 0, 0, 0.9, 0, 0], np.float32)
    assert scoring.worst_case(p, threshold=0.5) == pytest.approx(2 / 6)  # 0 and 3
    assert scoring.worst_case({"labels": p["labels"], "pred_original": p["pred_original"]}) is None


def test_fall_to_worst_case_is_on_the_examples_every_attack_ran_on():
    p = hand()
    assert scoring.fall_to_worst_case(p) == {
        "examples": 6, "attacks": 3, "pgd2": pytest.approx(2 / 6),
        "worst_case": pytest.approx(1 / 6), "strongest": ["pgd2"],
        "strongest_accuracy": pytest.approx(2 / 6)}
    # APGD on examples 0, 2, 3 (wrong on 0): there FGSM, PGD-2 and APGD leave 2 of 3 right
    p["pred_apgd_ce"] = np.array([1, 2, 0], np.int32)
    p["idx_apgd_ce"] = np.array([0, 2, 3])
    fall = scoring.fall_to_worst_case(p)
    assert (fall["examples"], fall["attacks"]) == (3, 4)
    assert fall["pgd2"] == pytest.approx(2 / 3) and fall["worst_case"] == 0.0
    assert fall["strongest"] == ["fgsm", "pgd2", "apgd_ce"]
    # GanDef-Comb's rule: example 3 flagged everywhere counts under every attack
    for k in ("original", "fgsm", "pgd1", "pgd2", "apgd_ce"):
        p[f"disc_{k}"] = (np.arange(len(p[f"pred_{k}"])) == (3 if k != "apgd_ce" else 2)
                          ).astype(np.float32)
    assert scoring.fall_to_worst_case(p, threshold=0.5)["worst_case"] == pytest.approx(1 / 3)
    assert scoring.fall_to_worst_case({k: p[k] for k in ("labels", "pred_fgsm")}) is None
    p.update(pred_apgd_dlr=np.array([0, 1], np.int32), idx_apgd_dlr=np.array([4, 5]))
    assert scoring.fall_to_worst_case(p) is None  # no example every attack ran on


def _pair(n, strong_right, weak_right):
    labels = np.zeros(n, np.int32)
    mk = lambda r: np.where(np.arange(n) < r, 0, 1).astype(np.int32)
    return {"labels": labels, "pred_pgd2": mk(strong_right), "pred_pgd1": mk(weak_right)}


def test_masking_flags_a_stronger_attack_that_does_worse_beyond_noise():
    desc = {"pgd2": "80 steps", "pgd1": "40 steps"}
    # 100 examples: PGD-2 leaves 90 right, PGD-1 80 (the 10 extra are right only under
    # PGD-2): well beyond 2 paired standard errors
    flags = scoring.masking_flags(_pair(100, 90, 80), desc)
    assert len(flags) == 1 and flags[0].startswith("pgd2 (80 steps) 90.0% > pgd1 (40 steps) 80.0%")
    assert scoring.masking_flags(_pair(100, 80, 90), desc) == []  # weaker is weaker: fine
    assert scoring.masking_flags(_pair(100, 80, 80), desc) == []
    # 2 examples of 100 favour PGD-2: within noise (2 SE = 2.8 pp > 2 pp)
    assert scoring.masking_flags(_pair(100, 82, 80), desc) == []


def test_masking_pairs_follow_the_steps_of_the_datasets_attacks():
    """CIFAR-10's PGD-1 (7 steps) is no stronger than its BIM (10 steps of the same size):
    PGD-1 above BIM is no flag there, while PGD-2 (20 steps) above BIM still is."""
    n, labels = 100, np.zeros(100, np.int32)
    mk = lambda r: np.where(np.arange(n) < r, 0, 1).astype(np.int32)
    pred = {"labels": labels, "pred_bim": mk(70), "pred_pgd1": mk(90), "pred_pgd2": mk(60)}
    mnist = {"bim": 10, "pgd1": 40, "pgd2": 80}
    cifar = {"bim": 10, "pgd1": 7, "pgd2": 20}
    assert [f.split(" ")[0] for f in scoring.masking_flags(pred, steps=mnist)] == ["pgd1"]
    assert scoring.masking_flags(pred, steps=cifar) == []
    pred["pred_pgd2"] = mk(85)
    assert [f.split(" ")[:3] for f in scoring.masking_flags(pred, steps=cifar)] == [
        ["pgd2", "85.0%", ">"]]


def test_adaptive_pairs_on_the_classifier_and_on_comb():
    n = 100
    labels = np.zeros(n, np.int32)
    mk = lambda r: np.where(np.arange(n) < r, 0, 1).astype(np.int32)
    p = {"labels": labels, "pred_original": mk(100), "pred_pgd2": mk(50), "pred_cw_merged": mk(70)}
    # the adaptive attacks keep PGD-2's examples as a candidate: never less effective
    (flag,) = scoring.masking_flags(p)
    assert flag.startswith("cw_merged 70.0% > pgd2 50.0%")
    # with a discriminator: on the classifier's accuracy, and with a threshold on Comb's
    p.update({f"disc_{k}": np.zeros(n, np.float32) for k in ("original", "pgd2", "cw_merged")})
    assert scoring.masking_flags(p) == [flag]
    flags = scoring.masking_flags(p, threshold=0.5)
    assert flags == [flag, "GanDef-Comb: " + flag]
    # D flags cw_merged's 30 misclassified examples: Comb 100% under it, 50% under PGD-2
    p["disc_cw_merged"] = np.where(np.arange(n) < 70, 0.0, 0.9).astype(np.float32)
    (comb_flag,) = scoring.masking_flags(p, threshold=0.5)[1:]
    assert comb_flag.startswith("GanDef-Comb: cw_merged 100.0% > pgd2 50.0%")
    rob = scoring.robustness(p, threshold=0.5)
    assert rob["worst_case"] == 0.5 and rob["comb_worst_case"] == 0.5
    assert rob["worst_case_examples"] == n and rob["worst_case_se"] == pytest.approx(0.05)
    assert rob["masking_flags"] == [flag, comb_flag] and "paired standard errors" in rob["masking_rule"]


def test_apgd_is_checked_against_pgd2_on_the_classifier():
    n = 100
    labels = np.zeros(n, np.int32)
    mk = lambda r: np.where(np.arange(n) < r, 0, 1).astype(np.int32)
    p = {"labels": labels, "pred_pgd2": mk(50), "pred_apgd_ce": mk(80), "pred_apgd_dlr": mk(40),
         "disc_pgd2": np.zeros(n, np.float32), "disc_apgd_ce": np.ones(n, np.float32),
         "disc_apgd_dlr": np.ones(n, np.float32), "disc_original": np.zeros(n, np.float32)}
    (flag,) = scoring.masking_flags(p, {"apgd_ce": "100 steps"}, threshold=0.5)
    assert flag.startswith("apgd_ce (100 steps) 80.0% > pgd2 50.0%")  # not on Comb's


def subset_predictions():
    """8 examples; the paper's attack on all of them, two costly ones on subsets."""
    labels = np.arange(8, dtype=np.int32) % 3
    wrong = (labels + 1) % 3
    right = lambda r: np.where(np.array(r, bool), labels, wrong).astype(np.int32)
    return {"labels": labels, "pred_original": labels.copy(),
            "pred_pgd2": right([1, 1, 1, 1, 0, 0, 1, 1]),
            # on examples 0, 2, 4, 6: right, wrong, right, right
            "pred_apgd_ce": right([1, 1, 0, 1, 1, 1, 1, 1])[[0, 2, 4, 6]],
            "idx_apgd_ce": np.array([0, 2, 4, 6], np.int32),
            # on examples 2, 4, 6, 7 (all right)
            "pred_cw_merged": labels[[2, 4, 6, 7]], "idx_cw_merged": np.array([2, 4, 6, 7], np.int32)}


def test_attacks_on_a_subset_are_scored_on_their_own_examples():
    p = subset_predictions()
    acc, _ = scoring.score(p)
    assert acc == {"original": 1.0, "pgd2": 0.75, "apgd_ce": 0.75, "cw_merged": 1.0}
    assert scoring.correct(p, "apgd_ce").tolist() == [True, False, True, True]
    se = scoring.standard_errors(p)
    assert se["apgd_ce"] == pytest.approx(np.sqrt(0.75 * 0.25 / 4))
    assert se["pgd2"] == pytest.approx(np.sqrt(0.75 * 0.25 / 8))
    # worst case on the examples every attack ran on, 2, 4, 6: 2 falls to apgd_ce, 4 to
    # pgd2, 6 is right under all
    assert scoring.worst_case(p, with_examples=True) == (pytest.approx(1 / 3), 3,
                                                         pytest.approx(np.sqrt(2 / 27)))
    shared, right = scoring.common(p, ("pgd2", "apgd_ce"))
    assert shared.tolist() == [0, 2, 4, 6]
    assert right.tolist() == [[True, True, False, True], [True, False, True, True]]
    # compared on their 4 shared examples (75% both): no flag; with PGD-2 always
    # succeeding, APGD's 75% is flagged, and the flag names the examples compared on
    assert scoring.masking_flags(p) == []
    p["pred_pgd2"] = (p["labels"] + 1) % 3
    flag, cw_flag = scoring.masking_flags(p)
    assert flag.startswith("apgd_ce 75.0% > pgd2 0.0%") and "on the 4 examples both ran on" in flag
    assert cw_flag.startswith("cw_merged 100.0% > pgd2 0.0%")
    assert scoring.robustness(p)["worst_case_examples"] == 3


def test_roc_auc_and_threshold_at_five_percent():
    neg = np.arange(100) / 100  # 0.00 .. 0.99
    pos = np.ones(50)
    fpr, tpr, taus = scoring.roc(neg, pos)
    assert (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert scoring.auc(fpr, tpr) == pytest.approx(1.0)  # perfect separation
    tau, f, t = scoring.tau_at_fpr(neg, pos, 0.05)
    assert tau == pytest.approx(0.95) and f == pytest.approx(0.05) and t == 1.0
    # identical distributions: the diagonal
    same = np.random.default_rng(0).uniform(size=200)
    assert scoring.auc(*scoring.roc(same, same)[:2]) == pytest.approx(0.5)
    # overlapping normals: about Phi(1 / sqrt(2)) = 0.760
    rng = np.random.default_rng(1)
    a = scoring.auc(*scoring.roc(rng.normal(0, 1, 4000), rng.normal(1, 1, 4000))[:2])
    assert a == pytest.approx(0.760, abs=0.02)
    # reversed: AUC 0; every original example above every adversarial one
    assert scoring.auc(*scoring.roc(pos, neg)[:2]) == pytest.approx(0.0)
    # a target no threshold meets except flagging nothing
    tau, f, t = scoring.tau_at_fpr(np.ones(10), np.ones(10), 0.05)
    assert tau > 1.0 and (f, t) == (0.0, 0.0)
    with pytest.raises(GandefError):
        scoring.roc([], [1.0])


def test_best_tau_curve_is_above_every_fixed_tau():
    rng = np.random.default_rng(0)
    n = 300
    labels = rng.integers(0, 10, n).astype(np.int32)
    p = {"labels": labels,
         "pred_original": np.where(rng.uniform(size=n) < 0.9, labels, (labels + 1) % 10),
         "pred_pgd2": np.where(rng.uniform(size=n) < 0.3, labels, (labels + 1) % 10),
         "disc_original": rng.beta(2, 5, n).astype(np.float32),
         "disc_pgd2": rng.beta(5, 2, n).astype(np.float32)}
    rho = np.linspace(0, 1, 101)
    best, taus = scoring.best_tau_curve(p, "pgd2", rho)
    for tau in (0.0, 0.3, 0.5, 0.7, 1.0):
        acc, comb = scoring.score(p, tau)
        fixed = 100 * ((1 - rho) * comb["original"] + rho * comb["pgd2"])
        assert np.all(best >= fixed - 1e-9)
    # at rho = 0 the best is never flagging a right original example; at rho = 1, flag all
    assert best[0] == pytest.approx(100 * np.mean(p["pred_original"] == labels))
    assert best[-1] == pytest.approx(100.0) and taus[-1] == 0.0
    assert np.all((taus >= 0) & (taus <= 1))
