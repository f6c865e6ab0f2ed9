"""CleverHans' FGSM, BIM and PGD with the paper's settings, one registry per dataset.

    from gandef_tf.attacks import get_spec, make_attack
    spec = get_spec("mnist", "pgd1")          # 40 steps of 0.01 in an eps=0.3 ball
    attack = make_attack(classifier, spec)    # compiled once per batch shape
    x_adv = attack(x, y)                      # true labels always; checked against eps

Every attack is CleverHans' own function, called with the true labels (no label
leaking), the model in inference mode (`training=False`) and CleverHans' sanity checks
off (they fail inside tf.function); `check_batch` enforces the threat model instead.
Beyond the paper, `pgd_adaptive` and `cw_merged` (gandef_tf/adaptive.py) attack the
classifier together with a discriminator when make_attack is given one, and `apgd_ce`,
`apgd_dlr` are IBM ART's AutoAttack pair (gandef_tf/autoattack.py; evaluation only).
"""

import dataclasses
from typing import Optional

import numpy as np
import tensorflow as tf
from cleverhans.tf2.attacks.basic_iterative_method import basic_iterative_method
from cleverhans.tf2.attacks.fast_gradient_method import fast_gradient_method
from cleverhans.tf2.attacks.projected_gradient_descent import projected_gradient_descent
from cleverhans.tf2.utils import clip_eta, random_lp_vector

from gandef_tf import GandefError, adaptive, autoattack
from gandef_tf.adaptive import ADAPTIVE_KINDS

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


def generate(model_fn, x, y, spec, disc_fn=None):
    """Adversarial examples for logits function model_fn; pure, usable inside train_step.
    disc_fn (logits -> discriminator logit) is read by the adaptive kinds only; each call
    is one restart."""
    common = dict(norm=np.inf, clip_min=0.0, clip_max=1.0, y=y)
    if spec.kind == "fgsm":
        x_adv = fast_gradient_method(model_fn, x, spec.eps, sanity_checks=False, **common)
    elif spec.kind == "bim":
        x_adv = basic_iterative_method(model_fn, x, spec.eps, spec.eps_iter, spec.nb_iter,
                                       targeted=False, sanity_checks=False, **common)
    elif spec.kind == "pgd":
        x_adv = projected_gradient_descent(model_fn, x, spec.eps, spec.eps_iter, spec.nb_iter,
                                           rand_init=spec.rand_init, sanity_checks=False,
                                           **common)
    elif spec.kind in ADAPTIVE_KINDS:
        fn, loss_fn = adaptive.objective(model_fn, spec, disc_fn)
        x_adv = projected_gradient_descent(fn, x, spec.eps, spec.eps_iter, spec.nb_iter,
                                           loss_fn=loss_fn, rand_init=spec.rand_init,
                                           sanity_checks=False, **common)
    elif spec.kind in autoattack.KINDS:
        raise GandefError(f"{spec.kind} runs in evaluation only (ART's numpy loop cannot be "
                          "part of a training step); choose another train_attack")
    else:  # fgsm_rs: CleverHans' PGD asserts eps_iter <= eps, so compose its pieces
        eta = random_lp_vector(tf.shape(x), np.inf, tf.cast(spec.eps, x.dtype), dtype=x.dtype)
        x_adv = tf.clip_by_value(x + eta, 0.0, 1.0)
        x_adv = fast_gradient_method(model_fn, x_adv, spec.eps_iter, sanity_checks=False,
                                     **common)
        x_adv = tf.clip_by_value(x + clip_eta(x_adv - x, np.inf, spec.eps), 0.0, 1.0)
    return tf.stop_gradient(x_adv)


def assert_in_threat_model(x, x_adv, eps):
    """Graph-side check for training: raises InvalidArgumentError on a violation."""
    checks = [
        tf.debugging.assert_less_equal(tf.reduce_max(tf.abs(x_adv - x)), eps + 1e-6,
                                       message="adversarial perturbation exceeds eps"),
        tf.debugging.assert_greater_equal(tf.reduce_min(x_adv), 0.0, message="x_adv < 0"),
        tf.debugging.assert_less_equal(tf.reduce_max(x_adv), 1.0, message="x_adv > 1"),
    ]
    with tf.control_dependencies(checks):
        return tf.debugging.check_numerics(x_adv, "x_adv has NaN or Inf")


def check_batch(x, x_adv, eps):
    """Evaluation refuses a batch outside the threat model (MadryLab's rule)."""
    x, x_adv = np.asarray(x), np.asarray(x_adv)
    if not np.all(np.isfinite(x_adv)):
        raise GandefError("attack produced NaN or Inf values")
    dist = float(np.max(np.abs(x_adv - x))) if x.size else 0.0
    if dist > eps + 1e-6:
        raise GandefError(f"attack perturbation {dist:.6f} exceeds eps {eps:.6f}")
    if x_adv.size and (x_adv.min() < 0.0 or x_adv.max() > 1.0):
        raise GandefError("attack produced pixels outside [0, 1]")
    return x_adv


def make_attack(model, spec, strategy=None, discriminator=None):
    """A compiled attack against a Keras classifier: (x, y) -> checked x_adv (numpy).
    The adaptive kinds also attack `discriminator` when given one (the paper's attacks
    never do) and keep, per example, the best of spec.restarts runs. With a tf.distribute
    strategy of several replicas, each batch is split across them (not ART's APGD: it
    runs on the default device)."""
    if spec.kind in autoattack.KINDS:
        apgd = autoattack.make_apgd(model, spec)
        return lambda x, y: check_batch(np.asarray(x), apgd(x, y), spec.eps)
    model_fn = lambda t: model(t, training=False)
    disc_fn = (None if discriminator is None or spec.kind not in ADAPTIVE_KINDS
               else lambda z: discriminator(z, training=False))
    replicas = strategy.num_replicas_in_sync if strategy is not None else 1

    def one(x, y):
        x_adv = generate(model_fn, x, y, spec, disc_fn)
        if spec.restarts == 1:
            return x_adv
        fn, loss_fn = adaptive.objective(model_fn, spec, disc_fn)
        return (x_adv,) + adaptive.outcome(fn, loss_fn, x_adv, y, disc_fn is not None)

    @tf.function(reduce_retracing=True)
    def run(x, y):
        if replicas == 1:
            return one(x, y)
        gather = lambda v: strategy.gather(v, axis=0)
        return tf.nest.map_structure(gather, strategy.run(one, args=(x, y)))

    def once(x, y):
        if replicas > 1:
            ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(len(x))
            x, y = next(iter(strategy.experimental_distribute_dataset(ds)))
        return tf.nest.map_structure(lambda t: t.numpy(), run(x, y))

    def attack(x, y):
        x = tf.convert_to_tensor(x, tf.float32)
        y = tf.convert_to_tensor(y, tf.int32)
        if spec.restarts == 1:
            return check_batch(x.numpy(), once(x, y), spec.eps)
        tries = [once(x, y) for _ in range(spec.restarts)]  # fresh random starts each
        advs = np.stack([check_batch(x.numpy(), t[0], spec.eps) for t in tries])
        best = adaptive.select_restarts([t[2] for t in tries], [t[1] for t in tries],
                                        [t[3] for t in tries] if disc_fn else None)
        return check_batch(x.numpy(), advs[best, np.arange(len(best))], spec.eps)

    return attack
