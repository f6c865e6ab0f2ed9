"""The paper's networks (Tables 3 and 4) and GanDef's discriminator; all output logits.

    from gandef_tf.models import build_classifier, build_discriminator
    clf = build_classifier("mnist")        # LeNet, 3,274,634 parameters
    disc = build_discriminator()           # Dense32-ReLU-Dense64-ReLU-Dense1, 2,529
    logits = clf(x, training=False)        # x: float32 NHWC in [0, 1]
    clf = build_classifier("cifar10", dropout="authors_code")  # allCNN, dropout inactive
"""

import keras
from keras import layers

from gandef_tf import GandefError
from gandef_tf.config import DROPOUTS

INPUT_SHAPES = {"mnist": (28, 28, 1), "cifar10": (32, 32, 3)}
NUM_CLASSES = 10


@keras.saving.register_keras_serializable(package="gandef_tf")
class InactiveDropout(layers.Dropout):
    """Table 4's dropout layer as the authors' code ran it: the same layer and rate, but
    it returns its input in training mode too (no parameters either way)."""

    def call(self, inputs, training=None):
        return inputs


def lenet(num_classes=NUM_CLASSES):
    """Table 3: Madry et al.'s MNIST network, Keras default (Glorot uniform) init."""
    x = inputs = keras.Input(INPUT_SHAPES["mnist"], name="image")
    x = layers.Conv2D(32, 5, padding="same", name="conv1")(x)
    x = layers.MaxPooling2D(2, 2, name="pool1")(x)
    x = layers.ReLU(name="relu1")(x)
    x = layers.Conv2D(64, 5, padding="same", name="conv2")(x)
    x = layers.MaxPooling2D(2, 2, name="pool2")(x)
    x = layers.ReLU(name="relu2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(1024, name="fc1")(x)
    x = layers.ReLU(name="relu3")(x)
    logits = layers.Dense(num_classes, dtype="float32", name="logits")(x)  # float32 under
    return keras.Model(inputs, logits, name="lenet")  # mixed precision, for stable losses


def all_cnn(num_classes=NUM_CLASSES, dropout="table4"):
    """Table 4: allCNN with He init; dropout "table4" is real, "authors_code" inactive."""
    if dropout not in DROPOUTS:
        raise GandefError(f"unknown dropout {dropout!r}; choose from {DROPOUTS}")
    drop = layers.Dropout if dropout == "table4" else InactiveDropout

    def conv(x, filters, size, padding, name):
        x = layers.Conv2D(filters, size, padding=padding, kernel_initializer="he_normal",
                          name=name)(x)
        return layers.ReLU(name=name + "_relu")(x)

    x = inputs = keras.Input(INPUT_SHAPES["cifar10"], name="image")
    x = drop(0.2, name="drop0")(x)
    for i in range(3):
        x = conv(x, 96, 3, "same", f"conv1_{i + 1}")
    x = layers.MaxPooling2D(2, 2, name="pool1")(x)
    x = drop(0.5, name="drop1")(x)
    for i in range(3):
        x = conv(x, 192, 3, "same", f"conv2_{i + 1}")
    x = layers.MaxPooling2D(2, 2, name="pool2")(x)
    x = drop(0.5, name="drop2")(x)
    x = conv(x, 192, 3, "valid", "conv3_1")
    x = conv(x, 192, 1, "same", "conv3_2")
    x = conv(x, 192, 1, "same", "conv3_3")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    logits = layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inputs, logits, name="all_cnn")


def build_classifier(dataset, dropout="table4"):
    """LeNet (no dropout layers: `dropout` is unused) or allCNN with `dropout`."""
    if dataset == "mnist":
        return lenet()
    if dataset == "cifar10":
        return all_cnn(dropout=dropout)
    raise GandefError(f"unknown dataset {dataset!r}; choose from {tuple(INPUT_SHAPES)}")


def float32_copy(model):
    """model's architecture in float32 with model's weights (which mixed precision keeps in
    float32 anyway): the reported attacks run in float32 whatever precision trained the
    model. Leaves Keras' global policy at float32, the evaluation's."""
    keras.mixed_precision.set_global_policy("float32")
    if all(layer.compute_dtype == "float32" for layer in model.layers):
        return model
    builders = {"lenet": lenet, "all_cnn": lambda: all_cnn(dropout=dropout_of(model)),
                "discriminator": build_discriminator}
    if model.name not in builders:
        raise GandefError(f"cannot make a float32 copy of model {model.name!r}")
    copy = builders[model.name]()
    copy.set_weights(model.get_weights())
    return copy


def dropout_of(model):
    """The `dropout` value an allCNN was built with."""
    inactive = any(isinstance(layer, InactiveDropout) for layer in model.layers)
    return "authors_code" if inactive else "table4"


def build_discriminator(num_classes=NUM_CLASSES):
    """Reads the classifier's logits; outputs one logit for 'the input was adversarial'."""
    z = inputs = keras.Input((num_classes,), name="classifier_logits")
    z = layers.Dense(32, activation="relu", name="d_fc1")(z)
    z = layers.Dense(64, activation="relu", name="d_fc2")(z)
    out = layers.Dense(1, dtype="float32", name="d_logit")(z)
    return keras.Model(inputs, out, name="discriminator")
