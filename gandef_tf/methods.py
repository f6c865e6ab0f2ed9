"""The training methods as Keras models with their own train_step, trained with fit().

    from gandef_tf.methods import build_trainer
    trainer = build_trainer(cfg)                 # cfg: gandef_tf.config.Config
    trainer.fit(train_ds, epochs=cfg.epochs, validation_data=test_ds)
    trainer.classifier                           # logits; trainer.discriminator for GanDef

Each batch is `(x, y)` of original examples (GanDef's also carries a second, independent
batch for its discriminator steps); mixed methods train on the batch and its PGD
examples, generated against the current classifier in inference mode.
"""

import keras
import tensorflow as tf

from gandef_tf import losses
from gandef_tf.gandef import GanDef
from gandef_tf.models import build_classifier, build_discriminator
# Trainer, the base every method builds on, lives in trainer.py (GanDef builds on it too);
# it stays importable from here.
from gandef_tf.trainer import Trainer


class LinearKnots(keras.optimizers.schedules.LearningRateSchedule):
    """lr_values[0] at step 0, lr_values[i + 1] at boundaries[i], linear in between, then
    the last value held: a cyclic lr is knots (peak_step, last_step), values (0, peak, 0)."""

    def __init__(self, boundaries, values):
        self.boundaries, self.values = [0.0] + [float(b) for b in boundaries], list(values)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        knots, values = tf.constant(self.boundaries), tf.constant(self.values, tf.float32)
        i = tf.clip_by_value(tf.searchsorted(knots, [step], side="right")[0] - 1, 0,
                             len(self.boundaries) - 2)
        frac = tf.clip_by_value((step - knots[i]) / (knots[i + 1] - knots[i]), 0.0, 1.0)
        return values[i] + frac * (values[i + 1] - values[i])

    def get_config(self):
        return {"boundaries": self.boundaries[1:], "values": self.values}


def make_optimizer(cfg):
    lr = cfg.lr
    if cfg.lr_boundaries and cfg.lr_schedule == "linear":
        lr = LinearKnots(cfg.lr_boundaries, cfg.lr_values)
    elif cfg.lr_boundaries:
        lr = keras.optimizers.schedules.PiecewiseConstantDecay(
            list(cfg.lr_boundaries), list(cfg.lr_values))
    if cfg.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=cfg.momentum)
    return keras.optimizers.Adam(lr)


class Vanilla(Trainer):
    def train_step(self, data):
        x, y = data

        def loss_fn():
            z = self.classifier(x, training=True)
            return losses.cross_entropy(y, z), z, y

        return self.classifier_update(loss_fn)


class PurePGD(Trainer):
    """Madry et al.: every training example is a PGD example."""

    def train_step(self, data):
        x, y = data
        x_adv = self.adversarial(x, y)

        def loss_fn():
            z = self.classifier(x_adv, training=True)
            return losses.cross_entropy(y, z), z, y

        return self.classifier_update(loss_fn)


class MixPGD(Trainer):
    """Kannan et al.: original examples and their PGD examples in one batch; with
    alp_weight > 0 the logits of each pair are pulled together (logit pairing)."""

    def __init__(self, classifier, cfg, pairing=False, **kwargs):
        super().__init__(classifier, cfg, **kwargs)
        self.pairing_weight = cfg.alp_weight if pairing else 0.0

    def train_step(self, data):
        x, y = data
        x_adv = self.adversarial(x, y)
        n = tf.shape(x)[0]

        def loss_fn():
            z = self.classifier(tf.concat([x, x_adv], 0), training=True)
            yy = tf.concat([y, y], 0)
            loss = losses.cross_entropy(yy, z)
            if self.pairing_weight:
                loss += self.pairing_weight * losses.logit_pairing(z[:n], z[n:])
            return loss, z, yy

        return self.classifier_update(loss_fn)


def build_trainer(cfg, classifier=None, discriminator=None):
    """A compiled trainer for cfg.method (jit off: XLA is 2.7x slower on CPU here).
    Under cfg.precision="mixed_float16" both optimizers scale the loss."""
    keras.mixed_precision.set_global_policy(cfg.precision)
    classifier = classifier or build_classifier(cfg.dataset, cfg.dropout)
    if cfg.is_gandef:
        trainer = GanDef(classifier, discriminator or build_discriminator(), cfg)
        d_optimizer = keras.optimizers.Adam(cfg.disc_lr)
        if cfg.precision == "mixed_float16":
            d_optimizer = keras.optimizers.LossScaleOptimizer(d_optimizer)
        trainer.compile(make_optimizer(cfg), d_optimizer)
        return trainer
    trainer = {
        "vanilla": lambda: Vanilla(classifier, cfg),
        "pure_pgd": lambda: PurePGD(classifier, cfg),
        "mix_pgd": lambda: MixPGD(classifier, cfg),
        "logit_pairing": lambda: MixPGD(classifier, cfg, pairing=True),
    }[cfg.method]()
    trainer.compile(optimizer=make_optimizer(cfg), jit_compile=False)
    return trainer
