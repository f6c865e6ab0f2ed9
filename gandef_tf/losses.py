"""Losses as small pure functions of logits.

    from gandef_tf import losses
    loss = losses.cross_entropy(y, logits)
    d = losses.discriminator_loss(d_clean, d_adv)        # source: original 0, adversarial 1
    c = losses.gandef_classifier_loss(y, z_clean, z_adv, d_clean, d_adv, gamma=2.0)
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


def source_bce(d_logits, is_adversarial):
    targets = tf.fill(tf.shape(d_logits), float(is_adversarial))
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=d_logits)


def discriminator_loss(d_clean, d_adv):
    """-E log q_D(s|z) over original (s=0) and adversarial (s=1) logits."""
    return tf.reduce_mean(tf.concat([source_bce(d_clean, 0), source_bce(d_adv, 1)], axis=0))


def gandef_classifier_loss(y, z_clean, z_adv, d_clean, d_adv, gamma, v1=False):
    """E[-log q_C] over all examples - gamma * D's loss: on adversarial logits only (V2,
    the paper's standard) or on all logits (V1, the first design, which fluctuates)."""
    ce = cross_entropy(tf.concat([y, y], 0), tf.concat([z_clean, z_adv], 0))
    d = discriminator_loss(d_clean, d_adv) if v1 else tf.reduce_mean(source_bce(d_adv, 1))
    return ce - gamma * d


def l2_weight_decay(model, coefficient):
    """coefficient * sum(tf.nn.l2_loss(kernel)), the form of the authors' and Madry's code."""
    if not coefficient:
        return tf.constant(0.0)
    kernels = [v for v in model.trainable_variables if v.name == "kernel"]
    return coefficient * tf.add_n([tf.nn.l2_loss(k) for k in kernels])
