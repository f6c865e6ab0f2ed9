"""Fig. 4's arithmetic: the paper's overall accuracy at a ratio rho of adversarial inputs,
and where GanDef-Comb's line crosses a baseline's (all in percent).

    from gandef_tf.crossover import crossover, flag_everything_crossover
    crossover(63.97, 73.56, 82.06, 48.33)      # 0.4176: the paper's CIFAR10 PGD-2 crossover
    flag_everything_crossover(82.06, 48.33)    # 0.6136: flagging every input beats Pure PGD

gandef_tf.report re-exports these.
"""

import numpy as np


def overall_accuracy(acc_original, acc_adversarial, rho):
    """The paper's overall accuracy (1 - rho) * acc_original + rho * acc_adversarial."""
    rho = np.asarray(rho, dtype=float)
    return (1.0 - rho) * acc_original + rho * acc_adversarial


def crossover(comb_original, comb_adversarial, base_original, base_adversarial):
    """rho in [0, 1] where GanDef-Comb's line rises above the baseline's, else None.

    comb(rho) - base(rho) = a + b*rho with a = comb_o - base_o, b = (comb_adv - comb_o)
    - (base_adv - base_o); it is zero at rho = -a / b. None when the lines never cross in
    [0, 1], when they are parallel or identical, or when the crossing is the baseline
    overtaking GanDef-Comb (b <= 0): only an overtaking BY GanDef-Comb is reported."""
    a = comb_original - base_original
    b = (comb_adversarial - comb_original) - (base_adversarial - base_original)
    if b <= 0:
        return None
    rho = -a / b
    return float(rho) if 0.0 <= rho <= 1.0 else None


def relation(comb_original, comb_adversarial, base_original, base_adversarial):
    """One phrase saying where GanDef-Comb is above the baseline on [0, 1] (for CSV)."""
    lo = comb_original - base_original
    hi = comb_adversarial - base_adversarial
    rho = crossover(comb_original, comb_adversarial, base_original, base_adversarial)
    if rho is not None and lo < 0:
        return f"GanDef-Comb higher for rho > {rho:.4f}"
    if lo >= 0 and hi >= 0:
        return "GanDef-Comb higher or equal on all of [0, 1]"
    if lo <= 0 and hi <= 0:
        return "GanDef-Comb lower or equal on all of [0, 1]"
    cross = lo / (lo - hi)
    return f"GanDef-Comb higher only for rho < {cross:.4f} (the baseline overtakes it)"


def crossovers(means_by_column, attacks=("fgsm", "pgd2"),
               baselines=("pure_pgd", "mix_pgd", "logit_pairing", "gandef")):
    """{attack: {baseline: rho or None}} from {column: {example: %}}; a baseline (or
    GanDef-Comb) without numbers is left out rather than given a value."""
    comb = means_by_column.get("gandef_comb")
    out = {}
    for a in attacks:
        out[a] = {}
        for b in baselines:
            base = means_by_column.get(b)
            if comb and base and a in comb and a in base:
                out[a][b] = crossover(comb["original"], comb[a], base["original"], base[a])
    return out


def flag_everything_crossover(original, adversarial):
    """rho above which a detector that flags every input beats a defense of accuracies
    (original, adversarial), in %. Under the paper's metric a flagged original counts as
    wrong and a flagged adversarial example as defended, so that detector scores rho * 100
    at ratio rho; it meets the defense's line at original / (100 - adversarial + original)."""
    return crossover(0.0, 100.0, original, adversarial)


def flag_everything_crossovers(means_by_column, attacks=("fgsm", "pgd2"),
                               defenses=("pure_pgd", "mix_pgd", "logit_pairing", "gandef",
                                         "gandef_comb")):
    """{attack: {defense: rho}} of flag_everything_crossover; defenses without numbers are
    left out."""
    return {a: {c: flag_everything_crossover(m["original"], m[a]) for c in defenses
                if (m := means_by_column.get(c)) and a in m and "original" in m}
            for a in attacks}
