"""Adaptive attacks: the classifier AND GanDef's discriminator, attacked as one system.

    from gandef_tf.attacks import get_spec, make_attack
    spec = dataclasses.replace(get_spec("mnist", "pgd_adaptive"), beta=1.0)
    attack = make_attack(classifier, spec, discriminator=discriminator)
    x_adv = attack(x, y)        # per example, the best of spec.restarts runs; checked
    # evaluation (gandef_tf/evaluate.py) runs candidate_specs(...) and keeps, per
    # example, choose(...) among them and PGD-2's own examples

The paper attacks the classifier alone; since Carlini & Wagner (2017, "Adversarial
examples are not easily detected") and Tramer et al. (2020) a detector is attacked
together with the classifier it guards. Both attacks are CleverHans' own PGD, given a
model that returns [classifier logits Z (N), discriminator logit Z_D (1)] and a loss
that splits it (CleverHans ascends `loss_fn(labels=y, logits=model_fn(x))`):

- pgd_adaptive: CE(y, Z) - beta * softplus(Z_D) = CE + beta * log(1 - D): the class
  moves away from y while D moves towards 'original';
- cw_merged: C&W's N+1 logits G_i = Z_i, G_{N+1} = (Z_D + 1) * max_j Z_j (the detector
  as one more class; Z shifted per example so that min_j Z_j = 0, see merged_logits),
  with the margin max_{j != y, j <= N} G_j - max(G_y, G_{N+1}).

Without a discriminator the D terms are absent: PGD with restarts and the C&W margin
loss on the classifier's logits, so every model meets the same stronger attacks.

No weaker than PGD-2 by construction: an evaluated adaptive attack is, per example, the
best of several candidates (CANDIDATE_RULE): PGD-2's own examples (its random start, as
scored in the PGD-2 row), and every restart of every objective it runs (pgd_adaptive
against a discriminator: every beta of BETA_GRID, beta = 0 being PGD-2's objective).
"""

import dataclasses

import numpy as np
import tensorflow as tf

from gandef_tf import GandefError
from gandef_tf.attack_specs import ADAPTIVE_KINDS, BETA_GRID  # noqa: F401
CANDIDATE_RULE = ("per example, a misclassified candidate if any, among them the one the "
                  "discriminator scores most 'original' (so the attack succeeds on the "
                  "classifier, and on GanDef-Comb at every threshold, wherever any candidate "
                  "does), else the one it scores lowest; candidates: PGD-2's own examples, "
                  "then every restart of every objective (pgd_adaptive against a "
                  "discriminator: each beta of the grid, beta = 0 being PGD-2's objective)")


def merged_logits(z, z_d):
    """C&W (2017) section 5: the detector's logit becomes class N+1 of the classifier.
    Their G_{N+1} = (Z_D + 1) * max_j Z_j assumes max_j Z_j > 0; with negative logits it
    inverts (our quick GanDef's logits sit near -755, and the margin then "succeeds" on
    detected examples). Softmax ignores a per-example shift, so Z - min_j Z_j classifies
    exactly as Z and meets the assumption; the merged model flags iff Z_D > 0."""
    z = z - tf.reduce_min(z, axis=1, keepdims=True)
    z_d = tf.reshape(z_d, [-1, 1])
    return tf.concat([z, (z_d + 1.0) * tf.reduce_max(z, axis=1, keepdims=True)], axis=1)


def margin(labels, g, n_classes):
    """max_{j != y, j < n_classes} G_j - max(G_y, G_extra...): positive once the example is
    classified wrong and (with a detector column) not detected. Per example."""
    onehot = tf.one_hot(labels, n_classes) > 0.5
    z = g[:, :n_classes]
    other = tf.reduce_max(tf.where(onehot, tf.fill(tf.shape(z), z.dtype.min), z), axis=1)
    guard = tf.reduce_sum(tf.where(onehot, z, tf.zeros_like(z)), axis=1)
    if g.shape[-1] > n_classes:  # the detector column: being flagged is as bad as class y
        guard = tf.maximum(guard, tf.reduce_max(g[:, n_classes:], axis=1))
    return other - guard


def objective(model_fn, spec, disc_fn=None):
    """(model_fn for CleverHans, loss_fn(labels, logits) per example) of an adaptive spec.
    With disc_fn the model returns [Z, Z_D] and the loss reads both."""
    if spec.kind not in ADAPTIVE_KINDS:
        raise GandefError(f"{spec.kind!r} is not an adaptive attack")
    if disc_fn is None:
        fn = model_fn
    else:
        if spec.kind == "pgd_adaptive" and spec.beta is None:
            raise GandefError("pgd_adaptive against a discriminator needs a beta "
                              "(evaluation chooses it by a search per model)")

        def fn(t):
            z = model_fn(t)
            return tf.concat([z, tf.cast(tf.reshape(disc_fn(z), [-1, 1]), z.dtype)], axis=1)

    def loss_fn(labels, logits):
        z = logits if disc_fn is None else logits[:, :-1]
        if spec.kind == "pgd_adaptive":
            ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=z)
            return ce if disc_fn is None else ce - spec.beta * tf.nn.softplus(logits[:, -1])
        n = logits.shape[-1] if disc_fn is None else logits.shape[-1] - 1
        return margin(labels, logits if disc_fn is None else merged_logits(z, logits[:, -1]), n)

    return fn, loss_fn


def outcome(fn, loss_fn, x_adv, y, with_disc):
    """Per example: (objective, classified wrong, D's probability or zeros), for choosing
    among restarts."""
    out = fn(x_adv)
    z = out[:, :-1] if with_disc else out
    wrong = tf.not_equal(tf.argmax(z, axis=1, output_type=tf.int32), tf.cast(y, tf.int32))
    d = tf.sigmoid(out[:, -1]) if with_disc else tf.zeros_like(out[:, 0])
    # wrong as int32: tf.distribute's gather refuses booleans
    return loss_fn(labels=y, logits=out), tf.cast(wrong, tf.int32), d


def select_restarts(wrong, loss, disc=None):
    """Index of the best restart per example, from [restarts, batch] arrays: a
    misclassifying restart first (with a discriminator, the one D scores most 'original',
    so it evades D at every threshold where any restart does), else the highest loss."""
    wrong, loss = np.asarray(wrong, bool), np.asarray(loss, np.float64)
    key = loss if disc is None else -np.asarray(disc, np.float64)
    secondary = np.where(wrong, key, loss)
    best_tier = wrong.max(axis=0)
    secondary = np.where(wrong == best_tier, secondary, -np.inf)
    return np.argmax(secondary, axis=0)


def candidate_specs(spec, with_disc, betas=BETA_GRID):
    """[(name, spec)]: the objectives an evaluated adaptive attack runs, each from
    spec.restarts random starts; pgd_adaptive against a discriminator once per beta,
    otherwise the attack itself (without D every beta is the same objective)."""
    if spec.kind not in ADAPTIVE_KINDS:
        raise GandefError(f"{spec.kind!r} is not an adaptive attack")
    if spec.kind == "pgd_adaptive" and with_disc:
        return [(f"beta {b:g}", dataclasses.replace(spec, beta=float(b))) for b in betas]
    return [(spec.kind, spec)]


def choose(wrong, disc=None):
    """Index of the candidate kept per example, from [candidates, batch] arrays of
    'misclassified' and D's probability (CANDIDATE_RULE); ties go to the earlier
    candidate. Without a discriminator: the first misclassified one, else the first."""
    wrong = np.asarray(wrong, bool)
    d = np.zeros(wrong.shape) if disc is None else np.asarray(disc, np.float64)
    if d.size and (d.min() < 0 or d.max() > 1):
        raise GandefError("discriminator scores must be probabilities in [0, 1]")
    # d lies in [0, 1], so subtracting 2 puts every misclassified candidate first
    return np.argmin(d - 2.0 * wrong, axis=0)
