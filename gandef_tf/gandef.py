"""GanDef (Algorithm 1): a classifier and a discriminator on its logits, a minimax game.

    from gandef_tf.gandef import GanDef
    trainer = GanDef(classifier, discriminator, cfg)
    trainer.compile(keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-3))
    trainer.fit(ds)   # ds yields ((x, y), (x_d, y_d)); x_d holds k fresh batches for D

Per global iteration: k discriminator updates with the classifier frozen, each on a
freshly sampled batch and fresh PGD examples; then one classifier update with the
discriminator frozen. `cfg.disc_batch="reuse"` (not the paper's) lets the discriminator
step reuse the classifier step's batch and PGD examples, which halves the attack cost.
"""

import keras
import tensorflow as tf

from gandef_tf import losses
from gandef_tf.trainer import Trainer


class GanDef(Trainer):
    def __init__(self, classifier, discriminator, cfg, **kwargs):
        super().__init__(classifier, cfg, **kwargs)
        self.discriminator = discriminator
        self.v1 = cfg.method == "gandef_v1"
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.d_acc_tracker = keras.metrics.BinaryAccuracy(name="d_accuracy", threshold=0.0)

    @property
    def metrics(self):
        return [self.loss_tracker, self.acc_tracker, self.d_loss_tracker, self.d_acc_tracker]

    def compile(self, c_optimizer, d_optimizer):
        super().compile(optimizer=c_optimizer, jit_compile=False)
        self.d_optimizer = d_optimizer

    def discriminator_update(self, z_clean, z_adv):
        """One step on D only; the logits come in as constants, so C cannot move."""
        z_clean, z_adv = tf.stop_gradient(z_clean), tf.stop_gradient(z_adv)
        variables = self.discriminator.trainable_variables
        with tf.GradientTape() as tape:
            d_clean = self.discriminator(z_clean, training=True)
            d_adv = self.discriminator(z_adv, training=True)
            loss = losses.discriminator_loss(d_clean, d_adv, self.cfg.gandef_loss)
            scaled = self.d_optimizer.scale_loss(losses.per_replica(loss))
        self.d_optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
        self.d_loss_tracker.update_state(loss)
        self.d_acc_tracker.update_state(tf.concat([tf.zeros_like(d_clean), tf.ones_like(d_adv)], 0),
                                        tf.concat([d_clean, d_adv], 0))

    def train_step(self, data):
        (x, y), (x_d, y_d) = data
        if self.cfg.disc_batch == "fresh":
            for xk, yk in zip(tf.split(x_d, self.cfg.disc_steps), tf.split(y_d, self.cfg.disc_steps)):
                zk = self.classifier(tf.concat([xk, self.adversarial(xk, yk)], 0), training=True)
                self.discriminator_update(*tf.split(zk, 2))
        x_adv = self.adversarial(x, y)
        yy = tf.concat([y, y], 0)

        def loss_fn():
            z = self.classifier(tf.concat([x, x_adv], 0), training=True)
            z_clean, z_adv = tf.split(z, 2)
            if self.cfg.disc_batch == "reuse":
                self.discriminator_update(z_clean, z_adv)
            # D is frozen here: only the classifier's variables are updated below.
            d_clean = self.discriminator(z_clean, training=False)
            d_adv = self.discriminator(z_adv, training=False)
            loss = losses.gandef_classifier_loss(y, z_clean, z_adv, d_clean, d_adv,
                                                 self.cfg.gamma, self.v1, self.cfg.gandef_loss)
            return loss, z, yy

        return self.classifier_update(loss_fn)
