"""Losses as small pure functions of logits.

    from gandef_tf import losses
    loss = losses.cross_entropy(y, logits)
    d = losses.discriminator_loss(d_clean, d_adv)        # source: original 0, adversarial 1
    c = losses.gandef_classifier_loss(y, z_clean, z_adv, d_clean, d_adv, gamma=2.0)
    d = losses.discriminator_loss(d_clean, d_adv, form="authors_code")

GanDef's two forms of D's loss (config.GANDEF_LOSSES): "equation" is the paper's
-log q_D(s|z) on D's logit; "authors_code" is what the authors' released training code
computes (REFERENCE.md section 3): the cross-entropy-with-logits applied to sigmoid(d),
i.e. the sigmoid taken twice, so each term lies in [0.313, 0.693] and vanishes in
gradient as d -> -inf. Both players use the same form; GanDef-Comb thresholds
sigmoid(d) once either way.
"""

import tensorflow as tf


def per_replica(loss):
    """Replicas' gradients are summed (tf.distribute), so each contributes loss / n."""
    return loss / tf.cast(tf.distribute.get_strategy().num_replicas_in_sync, loss.dtype)


def cross_entropy(y, logits):
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))


def logit_pairing(z_clean, z_adv):
    """Kannan et al.: mean squared difference over every logit of every pair."""
    return tf.reduce_mean(tf.square(z_clean - z_adv))


def source_bce(d_logits, is_adversarial, form="equation"):
    """Per-example -log q_D(s|z) with s = is_adversarial, in the given form."""
    if form not in ("equation", "authors_code"):
        raise ValueError(f"unknown GanDef loss form {form!r}")
    targets = tf.fill(tf.shape(d_logits), float(is_adversarial))
    logits = d_logits if form == "equation" else tf.sigmoid(d_logits)
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits)


def discriminator_loss(d_clean, d_adv, form="equation"):
    """-E log q_D(s|z) over original (s=0) and adversarial (s=1) logits."""
    return tf.reduce_mean(tf.concat([source_bce(d_clean, 0, form), source_bce(d_adv, 1, form)],
                                    axis=0))


def gandef_classifier_loss(y, z_clean, z_adv, d_clean, d_adv, gamma, v1=False,
                           form="equation"):
    """E[-log q_C] over all examples - gamma * D's loss: on adversarial logits only (V2,
    the paper's standard) or on all logits (V1, the first design, which fluctuates)."""
    ce = cross_entropy(tf.concat([y, y], 0), tf.concat([z_clean, z_adv], 0))
    d = (discriminator_loss(d_clean, d_adv, form) if v1
         else tf.reduce_mean(source_bce(d_adv, 1, form)))
    return ce - gamma * d


def l2_weight_decay(model, coefficient):
    """coefficient * sum(tf.nn.l2_loss(kernel)), the form of the authors' and Madry's code."""
    if not coefficient:
        return tf.constant(0.0)
    kernels = [v for v in model.trainable_variables if v.name == "kernel"]
    return coefficient * tf.add_n([tf.nn.l2_loss(k) for k in kernels])
