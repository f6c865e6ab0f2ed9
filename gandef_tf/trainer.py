"""The base of every training method: a Keras model that holds the classifier and updates
it with one GradientTape per step; the methods (methods.py, gandef.py) add train_step.

    from gandef_tf.trainer import Trainer

    class MyMethod(Trainer):   # train_step: loss_fn() -> (loss, logits, labels) on a batch
        def train_step(self, data):
            return self.classifier_update(lambda: my_loss(self.classifier, *data))
"""

import keras
import tensorflow as tf

from gandef_tf import losses
from gandef_tf.attacks import assert_in_threat_model, generate, spec_for


class Trainer(keras.Model):
    """Holds the classifier; evaluation (test_step) is clean accuracy for every method."""

    def __init__(self, classifier, cfg, **kwargs):
        super().__init__(**kwargs)
        self.classifier = classifier
        self.cfg = cfg
        self.attack_spec = spec_for(cfg, cfg.train_attack)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.acc_tracker = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    @property
    def metrics(self):
        return [self.loss_tracker, self.acc_tracker]

    def call(self, x, training=False):
        return self.classifier(x, training=training)

    def adversarial(self, x, y):
        x_adv = generate(lambda t: self.classifier(t, training=False), x, y, self.attack_spec)
        return assert_in_threat_model(x, x_adv, self.attack_spec.eps)

    def classifier_update(self, loss_fn):
        """One optimizer step on the classifier only; loss_fn() -> (loss, logits, labels)."""
        variables = self.classifier.trainable_variables
        with tf.GradientTape() as tape:
            loss, logits, labels = loss_fn()
            total = loss + losses.l2_weight_decay(self.classifier, self.cfg.weight_decay)
            scaled = self.optimizer.scale_loss(losses.per_replica(total))
        self.optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
        self.loss_tracker.update_state(loss)
        self.acc_tracker.update_state(labels, logits)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        x, y = data
        logits = self.classifier(x, training=False)
        self.loss_tracker.update_state(losses.cross_entropy(y, logits))
        self.acc_tracker.update_state(y, logits)
        return {"loss": self.loss_tracker.result(), "accuracy": self.acc_tracker.result()}
