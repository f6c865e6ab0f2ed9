"""AutoAttack's white-box pair (Croce & Hein 2020), APGD-CE and APGD-DLR, from IBM ART.

    from gandef_tf.attacks import get_spec, make_attack
    attack = make_attack(classifier, get_spec("mnist", "apgd_ce"))   # 100 steps in eps 0.3
    x_adv = attack(x, y)                                              # checked against eps

ART (`adversarial-robustness-toolbox` >= 1.20) is an optional dependency:
`pip install -e ".[eval]"`. Its AutoProjectedGradientDescent runs as it is, never
re-implemented here, on a TensorFlowV2Classifier around our Keras model (ART's
KerasClassifier does not take Keras 3 models); ART calls the model with training=False.
The settings are AutoAttack's: L-inf, true labels, one random start, an initial step of
2 * eps that the attack adapts itself, and the loss named by the attack (cross-entropy,
or the difference of logits ratio, which needs >= 3 classes).

GanDef's discriminator is not attacked: APGD attacks the classifier alone (the adaptive
attacks of adaptive.py attack the discriminator too); GanDef-Comb's rows score the
discriminator's verdict on APGD's examples.
"""

import importlib.metadata
import warnings

import numpy as np

from gandef_tf import GandefError

KINDS = ("apgd_ce", "apgd_dlr")
LOSSES = {"apgd_ce": "cross_entropy", "apgd_dlr": "difference_logits_ratio"}
MIN_VERSION = (1, 20)
INSTALL = 'pip install -e ".[eval]" (adversarial-robustness-toolbox >= 1.20)'


def missing_reason():
    """None when a usable ART is installed, else why not (one phrase)."""
    try:
        version = importlib.metadata.version("adversarial-robustness-toolbox")
    except importlib.metadata.PackageNotFoundError:
        return "IBM ART is not installed"
    try:
        if tuple(int(p) for p in version.split(".")[:2]) < MIN_VERSION:
            return f"IBM ART {version} is older than 1.20"
    except ValueError:
        return f"IBM ART's version {version!r} is unreadable"
    return None


def require(names):
    """Refuse, in one line and before any attack runs, APGD attacks without ART."""
    names = [n for n in names if n in KINDS]
    reason = missing_reason() if names else None
    if reason:
        raise GandefError(f"{', '.join(names)} need{'s' * (len(names) == 1)} IBM ART: {reason}; "
                          f"install it with {INSTALL} "
                          "or leave them out of --eval_attacks")


def _art():
    require(KINDS[:1])
    with warnings.catch_warnings():  # ART's package import warns about absent PyTorch
        warnings.simplefilter("ignore")
        from art.attacks.evasion import AutoProjectedGradientDescent
        from art.estimators.classification import TensorFlowV2Classifier
    return AutoProjectedGradientDescent, TensorFlowV2Classifier


def make_apgd(model, spec, batch_size=250):
    """(x, y) -> ART's APGD examples (numpy, unchecked: attacks.make_attack checks them)
    against a Keras model that outputs logits."""
    if spec.kind not in KINDS:
        raise GandefError(f"{spec.kind!r} is not an APGD attack; choose from {KINDS}")
    apgd_cls, classifier_cls = _art()
    import keras
    import tensorflow as tf

    n_classes = int(model.output_shape[-1])
    estimator = classifier_cls(
        model, nb_classes=n_classes, input_shape=tuple(model.input_shape[1:]),
        loss_object=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        clip_values=(0.0, 1.0))
    apgd = apgd_cls(estimator, norm=np.inf, eps=spec.eps, eps_step=2 * spec.eps,
                    max_iter=spec.nb_iter, targeted=False, nb_random_init=1,
                    batch_size=batch_size, loss_type=LOSSES[spec.kind], verbose=False)

    def attack(x, y):
        x = np.asarray(x, np.float32)
        # ART retraces its forward pass per batch shape and says so at every retrace.
        level = tf.get_logger().level
        tf.get_logger().setLevel("ERROR")
        try:
            x_adv = apgd.generate(x, np.asarray(y, np.int64))
        finally:
            tf.get_logger().setLevel(level)
        return np.asarray(x_adv, np.float32)

    return attack
