"""The networks of REFERENCE.md: parameter counts, shapes, layers, initialisers, logits."""

import keras
import numpy as np
import pytest

from gandef_tf import GandefError
from gandef_tf.models import build_classifier, build_discriminator


@pytest.fixture(scope="module")
def lenet():
    keras.utils.set_random_seed(0)
    return build_classifier("mnist")


@pytest.fixture(scope="module")
def allcnn():
    keras.utils.set_random_seed(0)
    return build_classifier("cifar10")


def test_parameter_counts(lenet, allcnn):
    assert lenet.count_params() == 3_274_634
    assert allcnn.count_params() == 1_406_794
    assert build_discriminator().count_params() == 2_529


def test_output_shapes(lenet, allcnn):
    assert lenet(np.zeros((3, 28, 28, 1), np.float32)).shape == (3, 10)
    assert allcnn(np.zeros((2, 32, 32, 3), np.float32)).shape == (2, 10)
    assert build_discriminator()(np.zeros((5, 10), np.float32)).shape == (5, 1)


def test_lenet_is_table3(lenet):
    convs = [l for l in lenet.layers if isinstance(l, keras.layers.Conv2D)]
    assert [(c.filters, c.kernel_size, c.padding) for c in convs] == [
        (32, (5, 5), "same"), (64, (5, 5), "same")]
    dense = [l for l in lenet.layers if isinstance(l, keras.layers.Dense)]
    assert [d.units for d in dense] == [1024, 10]
    assert not any(isinstance(l, keras.layers.Dropout) for l in lenet.layers)
    # Keras' default init (Glorot uniform), as Table 3 says
    assert all(isinstance(c.kernel_initializer, keras.initializers.GlorotUniform) for c in convs)


def test_allcnn_dropout_and_he_init(allcnn):
    drops = [l for l in allcnn.layers if isinstance(l, keras.layers.Dropout)]
    assert [d.rate for d in drops] == pytest.approx([0.2, 0.5, 0.5])
    assert isinstance(allcnn.layers[1], keras.layers.Dropout)  # dropout .2 on the input
    convs = [l for l in allcnn.layers if isinstance(l, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [96] * 3 + [192] * 6
    assert [c.kernel_size for c in convs] == [(3, 3)] * 7 + [(1, 1)] * 2
    assert convs[6].padding == "valid"
    assert all(isinstance(c.kernel_initializer, keras.initializers.HeNormal) for c in convs)
    assert any(isinstance(l, keras.layers.GlobalAveragePooling2D) for l in allcnn.layers)


def test_allcnn_dropout_runs_only_in_training(allcnn):
    x = np.random.default_rng(0).uniform(0, 1, (2, 32, 32, 3)).astype(np.float32)
    a, b = allcnn(x, training=False).numpy(), allcnn(x, training=False).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(allcnn(x, training=True).numpy(), a)


@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
def test_classifier_outputs_logits_not_probabilities(dataset, lenet, allcnn):
    model = lenet if dataset == "mnist" else allcnn
    shape = model.input_shape[1:]
    x = np.random.default_rng(1).uniform(0, 1, (16,) + shape).astype(np.float32)
    z = model(x, training=False).numpy()
    assert not np.allclose(z.sum(axis=1), 1.0, atol=1e-3)
    assert (z < 0).any()
    assert model.layers[-1].activation is keras.activations.linear


def test_discriminator_outputs_a_logit():
    disc = build_discriminator()
    assert [l.units for l in disc.layers if isinstance(l, keras.layers.Dense)] == [32, 64, 1]
    d = disc(np.random.default_rng(2).normal(0, 10, (64, 10)).astype(np.float32)).numpy()
    assert disc.layers[-1].activation is keras.activations.linear
    assert ((d < 0) | (d > 1)).any()


def test_unknown_dataset_is_refused():
    with pytest.raises(GandefError, match="unknown dataset"):
        build_classifier("svhn")
