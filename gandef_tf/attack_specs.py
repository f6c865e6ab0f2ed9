"""The attack settings: one registry per dataset, the paper's (and, beyond it, the adaptive
and APGD attacks' and the cheaper training attacks'). No TensorFlow here: pricing and the
renderers read it; gandef_tf.attacks runs the attacks.

    from gandef_tf.attack_specs import get_spec
    spec = get_spec("mnist", "pgd1")          # 40 steps of 0.01 in an eps=0.3 ball
"""

import dataclasses
from typing import Optional

from gandef_tf import GandefError, autoattack

ADAPTIVE_KINDS = ("pgd_adaptive", "cw_merged")
# pgd_adaptive's weights of the discriminator term; each is one candidate per example
# (a choice of one beta on a few examples made the attack weaker than PGD-2 on some).
BETA_GRID = (0.0, 0.3, 1.0, 3.0, 10.0)
KINDS = ("fgsm", "bim", "pgd", "fgsm_rs") + ADAPTIVE_KINDS + autoattack.KINDS
ITERATIVE = ("bim", "pgd") + ADAPTIVE_KINDS
# Random restarts of the adaptive attacks (each keeps, per example, the best restart).
RESTARTS = 5


@dataclasses.dataclass(frozen=True)
class AttackSpec:
    kind: str  # fgsm | bim | pgd | fgsm_rs (Wong et al. 2020) | pgd_adaptive | cw_merged | apgd_*
    eps: float
    eps_iter: Optional[float] = None
    nb_iter: int = 1
    rand_init: bool = False
    label: str = ""
    restarts: int = 1  # adaptive kinds: runs from fresh random starts, best kept per example
    beta: Optional[float] = None  # pgd_adaptive: weight of the discriminator term

    def __post_init__(self):
        if self.kind not in KINDS:
            raise GandefError(f"unknown attack kind {self.kind!r}; choose from {KINDS}")
        if not 0 < self.eps <= 1:
            raise GandefError(f"attack eps must be in (0, 1], got {self.eps}")
        if self.eps_iter is not None and not 0 < self.eps_iter <= 1:
            raise GandefError(f"attack step must be in (0, 1], got {self.eps_iter}")
        if self.nb_iter < 1:
            raise GandefError(f"attack iterations must be >= 1, got {self.nb_iter}")
        if self.restarts < 1 or (self.restarts > 1 and self.kind not in ADAPTIVE_KINDS):
            raise GandefError(f"restarts must be 1, or >= 1 for {ADAPTIVE_KINDS}; "
                              f"got {self.restarts} for {self.kind!r}")
        if self.beta is not None and self.beta < 0:
            raise GandefError(f"beta must be >= 0, got {self.beta}")

    def describe(self):
        """'80 steps, 5 restarts, margin loss': what makes one attack stronger than another."""
        parts = [f"{self.nb_iter} step{'s' * (self.nb_iter > 1)}"]
        parts += [f"{self.restarts} restarts"] if self.restarts > 1 else []
        parts += ["margin loss"] if self.kind == "cw_merged" else []
        parts += ["adaptive step size"] if self.kind in autoattack.KINDS else []
        return ", ".join(parts)


def _paper(eps, bim_step, pgd_step, pgd1_iter, pgd2_iter):
    return {
        "fgsm": AttackSpec("fgsm", eps, label="FGSM"),
        "bim": AttackSpec("bim", eps, bim_step, 10, label="BIM"),  # CleverHans v2.1 default
        "pgd1": AttackSpec("pgd", eps, pgd_step, pgd1_iter, True, label="PGD-1"),
        "pgd2": AttackSpec("pgd", eps, pgd_step, pgd2_iter, True, label="PGD-2"),
        # Beyond the paper: PGD-2's budget against classifier + discriminator (adaptive.py).
        "pgd_adaptive": AttackSpec("pgd_adaptive", eps, pgd_step, pgd2_iter, True,
                                   label="Adaptive PGD", restarts=RESTARTS),
        "cw_merged": AttackSpec("cw_merged", eps, pgd_step, pgd2_iter, True,
                                label="C&W merged", restarts=RESTARTS),
        # Beyond the paper: AutoAttack's APGD (ART), 100 steps; it sets its own step size.
        "apgd_ce": AttackSpec("apgd_ce", eps, None, 100, True, label="APGD-CE"),
        "apgd_dlr": AttackSpec("apgd_dlr", eps, None, 100, True, label="APGD-DLR"),
        # Not in the paper; cheaper training attacks for the CPU presets (docs/deviations.md).
        "pgd_fast": AttackSpec("pgd", eps, eps / 3, 5, True, label="PGD-5"),
        # FGSM from a random start (Wong et al. 2020): overfits catastrophically on MNIST
        # at eps 0.3 (our quick trial: 92% FGSM, 12% PGD-1), so only smoke uses it.
        "fgsm_rs": AttackSpec("fgsm_rs", eps, 1.25 * eps, 1, True, label="FGSM-RS"),
    }


RELATIVE_STEP = ("pgd_fast", "fgsm_rs")
REGISTRY = {
    "mnist": _paper(0.3, 0.05, 0.01, 40, 80),
    "cifar10": _paper(8 / 255, 2 / 255, 2 / 255, 7, 20),
}


def get_spec(dataset, name, eps=None, eps_iter=None, iter_cap=None):
    """The registry's spec, with a config's eps / step / iteration-cap overrides applied
    (the cap also caps restarts: smoke runs stay seconds)."""
    if dataset not in REGISTRY:
        raise GandefError(f"unknown dataset {dataset!r}; choose from {tuple(REGISTRY)}")
    if name not in REGISTRY[dataset]:
        raise GandefError(f"unknown attack {name!r}; choose from {tuple(REGISTRY[dataset])}")
    spec = REGISTRY[dataset][name]
    changes = {}
    if eps is not None:
        changes["eps"] = eps
        if name in RELATIVE_STEP:  # defined as a fraction of eps, so they follow it
            changes["eps_iter"] = spec.eps_iter * eps / spec.eps
    if eps_iter is not None and spec.eps_iter is not None:
        changes["eps_iter"] = eps_iter
    if iter_cap is not None:
        changes["nb_iter"] = min(spec.nb_iter, iter_cap)
        changes["restarts"] = min(spec.restarts, iter_cap)
    spec = dataclasses.replace(spec, **changes) if changes else spec
    if spec.kind in ITERATIVE and spec.eps_iter > spec.eps + 1e-12:
        # CleverHans would stop on a bare assert, after training; say it up front.
        raise GandefError(f"{name}: step {spec.eps_iter:g} exceeds eps {spec.eps:g}; "
                          "pass an --eps_iter no larger than --eps")
    return spec


def spec_for(cfg, name):
    return get_spec(cfg.dataset, name, cfg.eps, cfg.eps_iter, cfg.attack_iter_cap)
