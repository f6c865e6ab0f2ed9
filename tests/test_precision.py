"""bfloat16 training on CPUs that have it, float32 evaluation whatever trained the model,
and a run that keeps the precision it was started in."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from gandef_tf import GandefError, config, evaluate as evaluate_mod, runs, training
from gandef_tf.config import get_config
from gandef_tf.models import build_classifier, float32_copy

AMX = "processor\t: 0\nflags\t\t: fpu sse avx512f amx_bf16 amx_tile\n"
AVX512_BF16 = "flags\t\t: fpu avx512f avx512_bf16\n"
PLAIN = "model name\t: Old CPU\nflags\t\t: fpu sse avx2 avx512f\n"


@pytest.fixture
def float32_after():
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("cpuinfo,native", [(AMX, True), (AVX512_BF16, True), (PLAIN, False),
                                            ("", False)])
def test_native_bfloat16_is_read_from_cpu_flags(cpuinfo, native):
    assert config.native_bfloat16(cpuinfo) is native


def test_default_precision_follows_the_cpu_and_training_says_float32(monkeypatch, capsys):
    monkeypatch.setattr(config, "native_bfloat16", lambda: False)
    quick = get_config("quick", "cifar10", "mix_pgd")
    assert quick.precision == "float32"
    assert get_config("paper", "mnist", "gandef").precision == "float32"
    # a config (a plan, a refusal) prints nothing: `make results` reads plan's stdout
    assert capsys.readouterr().out == ""
    assert "no native bfloat16" in config.precision_note(quick)
    assert config.precision_note(get_config("smoke", "mnist", "vanilla")) is None
    monkeypatch.setattr(config, "native_bfloat16", lambda: True)
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    assert get_config("quick", "cifar10", "mix_pgd").precision == "mixed_bfloat16"
    # an explicit precision wins; smoke stays float32 (its tests compare exact weights)
    assert get_config("quick", "mnist", "vanilla", precision="float32").precision == "float32"
    assert get_config("smoke", "mnist", "vanilla").precision == "float32"
    # a GPU keeps float32 unless asked
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["gpu0"])
    assert get_config("quick", "cifar10", "mix_pgd").precision == "float32"


def test_bfloat16_is_a_deviation_from_the_paper():
    cfg = get_config("quick", "cifar10", "vanilla", precision="mixed_bfloat16")
    assert "precision='mixed_bfloat16' (paper: 'float32')" in config.deviations(cfg)


def test_a_run_keeps_its_stored_precision_unless_another_is_asked(capsys):
    from experiments import cli

    stored = get_config("smoke", "mnist", "vanilla", precision="float32")
    runs.prepare(stored)
    asked = get_config("smoke", "mnist", "vanilla", precision="mixed_bfloat16")
    kept = cli.keep_stored_precision(asked)
    assert kept.precision == "float32" and "continues in float32" in capsys.readouterr().err
    # asking explicitly for another precision than the run was made in is refused
    with pytest.raises(GandefError, match="precision"):
        runs.prepare(asked)
    fresh = get_config("smoke", "mnist", "gandef", precision="mixed_bfloat16")
    assert cli.keep_stored_precision(fresh) == fresh  # nothing stored: the default stays


def test_float32_copy_has_float32_layers_and_the_same_function(float32_after):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    model = build_classifier("mnist")
    assert model.get_layer("conv1").compute_dtype == "bfloat16"
    copy = float32_copy(model)
    assert all(layer.compute_dtype == "float32" for layer in copy.layers)
    for a, b in zip(copy.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(0).uniform(size=(4, 28, 28, 1)).astype(np.float32)
    # same function up to bfloat16 rounding of the original's activations
    np.testing.assert_allclose(copy(x).numpy(), model(x).numpy(), rtol=0.1, atol=0.1)
    assert keras.mixed_precision.global_policy().name == "float32"
    assert float32_copy(copy) is copy


def test_bfloat16_trained_model_is_attacked_in_float32(fake_data, monkeypatch, float32_after):
    # LeNet (float32_copy rebuilds it by name), shrunk to what is checked: dtypes, not
    # accuracy (bfloat16 is emulated, and slow, on a CPU without it)
    cfg = get_config("smoke", "mnist", "gandef", precision="mixed_bfloat16",
                     eval_attacks=("fgsm", "pgd1"), n_train=64, n_test=16, epochs=1,
                     eval_batch_size=16)
    seen = []
    real = evaluate_mod.make_attack

    def spy(classifier, spec, strategy=None, discriminator=None):
        attack = real(classifier, spec, strategy, discriminator)

        def wrapped(x, y):
            x = tf.convert_to_tensor(x)
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(classifier(x, training=False))
            seen.append((tape.gradient(loss, x).dtype,
                         {layer.compute_dtype for layer in classifier.layers}))
            return attack(x, y)

        return wrapped

    monkeypatch.setattr(evaluate_mod, "make_attack", spy)
    res = evaluate_mod.evaluate(cfg, verbose=0)
    assert res["config"]["precision"] == "mixed_bfloat16"
    assert seen and all(g == tf.float32 and dtypes == {"float32"} for g, dtypes in seen)
    stored = json.loads((runs.results_dir(cfg) / "config.json").read_text())
    assert stored["config"]["precision"] == "mixed_bfloat16"
    assert training.load_finished(cfg)[0].get_layer("conv1").compute_dtype == "float32"


def test_paired_difference_and_standard_error_by_hand():
    from experiments.precision_check import paired

    c32 = np.array([1, 1, 0, 1, 0, 1, 1, 0], bool)
    c16 = np.array([1, 0, 0, 1, 0, 1, 0, 0], bool)
    row = paired(c32, c16)
    d = np.array([0, 1, 0, 0, 0, 0, 1, 0], float)
    assert row["n"] == 8 and row["float32"] == 0.625 and row["bfloat16"] == 0.375
    assert row["difference_points"] == pytest.approx(25.0)
    assert row["paired_se_points"] == pytest.approx(100 * d.std(ddof=1) / np.sqrt(8))
