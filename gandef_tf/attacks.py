"""CleverHans' FGSM, BIM and PGD with the paper's settings (the registry of settings per
dataset: gandef_tf/attack_specs.py, re-exported here).

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

import numpy as np
import tensorflow as tf
from cleverhans.tf2.attacks.basic_iterative_method import basic_iterative_method
from cleverhans.tf2.attacks.fast_gradient_method import fast_gradient_method
from cleverhans.tf2.attacks.projected_gradient_descent import projected_gradient_descent
from cleverhans.tf2.utils import clip_eta, random_lp_vector

from gandef_tf import GandefError, adaptive, autoattack
# The registry itself is TensorFlow-free (pricing reads it); importable from here too.
from gandef_tf.attack_specs import (ADAPTIVE_KINDS, ITERATIVE, KINDS, REGISTRY,  # noqa: F401
                                    RESTARTS, AttackSpec, get_spec, spec_for)


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
