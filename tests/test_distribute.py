"""Mixed precision and tf.distribute: same kind of result as float32 on one device."""

import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from gandef_tf.config import get_config
from gandef_tf.methods import build_trainer

ROOT = Path(__file__).resolve().parents[1]

# Two logical CPU devices must be configured before TensorFlow starts: a fresh process.
MIRRORED = r"""
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import dataclasses, keras, numpy as np
from gandef_tf.attacks import get_spec, make_attack
from gandef_tf.models import build_discriminator
from gandef_tf.config import get_config
from gandef_tf.methods import build_trainer
from gandef_tf.training import get_strategy
rng = np.random.default_rng(0)
x = rng.uniform(size=(32, 28, 28, 1)).astype(np.float32)
y = rng.integers(0, 10, 32).astype(np.int32)
out = {}
for name in ("default", "mirrored"):
    keras.utils.set_random_seed(0)
    strategy = get_strategy(name)
    with strategy.scope():  # a small classifier: what is tested is the replicas' sum
        inputs = keras.Input((28, 28, 1))
        hidden = keras.layers.Dense(32, activation="relu")(keras.layers.Flatten()(inputs))
        tiny = keras.Model(inputs, keras.layers.Dense(10)(hidden))
        trainer = build_trainer(get_config("smoke", "mnist", "vanilla", batch_size=32), tiny)
    init = trainer.classifier.get_weights()[0]
    trainer.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(32), epochs=1, verbose=0,
                shuffle=False)
    w = trainer.classifier.get_weights()[0]
    bim = make_attack(trainer.classifier, get_spec("mnist", "bim", iter_cap=2), strategy)(x, y)
    with strategy.scope():
        disc = build_discriminator()
    spec = dataclasses.replace(get_spec("mnist", "pgd_adaptive", iter_cap=2), beta=1.0)
    adaptive = make_attack(trainer.classifier, spec, strategy, disc)(x, y)  # 2 restarts
    out[name] = dict(replicas=strategy.num_replicas_in_sync, moved=float(abs(w - init).max()),
                     w=w.ravel()[:2000].tolist(), bim=bim.ravel()[:5000].tolist(),
                     adaptive=[float(abs(adaptive - x).max()), float(adaptive.min()),
                               float(adaptive.max())])
print("RESULT" + json.dumps(out))
"""


def test_mirrored_on_two_cpu_devices_matches_one_device():
    proc = subprocess.run([sys.executable, "-c", MIRRORED], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT")]
    assert proc.returncode == 0 and line, proc.stderr[-2000:]
    out = json.loads(line[0][len("RESULT"):])
    one, two = out["default"], out["mirrored"]
    assert one["replicas"] == 1 and two["replicas"] == 2
    assert two["moved"] > 1e-4  # the step really trained
    # Gradients are summed over replicas: with the loss scaled by 1/replicas the update
    # equals one device's on the whole batch (a missing scaling would double it).
    np.testing.assert_allclose(two["w"], one["w"], atol=1e-6)
    np.testing.assert_allclose(two["bim"], one["bim"], atol=1e-6)
    for run in (one, two):  # the adaptive attack's restarts gathered across replicas
        dist, lo, hi = run["adaptive"]
        assert 0.25 < dist <= 0.3 + 1e-6 and 0.0 <= lo <= hi <= 1.0


@pytest.fixture
def float32_after():
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_trains_with_float32_variables_and_logits(precision, float32_after):
    cfg = get_config("smoke", "mnist", "gandef", precision=precision, batch_size=8)
    trainer = build_trainer(cfg)
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(8, 28, 28, 1)).astype(np.float32)
    y = rng.integers(0, 10, 8).astype(np.int32)
    before = [v.numpy().copy() for v in trainer.classifier.trainable_variables]
    logs = tf.function(trainer.train_step)(((x, y), (x, y)))
    assert np.isfinite(float(logs["loss"])) and np.isfinite(float(logs["d_loss"]))
    assert all(v.dtype == "float32" for v in trainer.classifier.trainable_variables)
    assert trainer.classifier(x).dtype == tf.float32
    compute = trainer.classifier.get_layer("conv2").compute_dtype
    assert compute == precision.split("_")[1]
    assert any(np.abs(v.numpy() - b).max() > 0
               for v, b in zip(trainer.classifier.trainable_variables, before))
    scaled = precision == "mixed_float16"
    assert isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer) == scaled
    assert isinstance(trainer.d_optimizer, keras.optimizers.LossScaleOptimizer) == scaled


def test_unknown_precision_is_refused():
    from gandef_tf import GandefError

    with pytest.raises(GandefError, match="precision"):
        get_config("smoke", "mnist", "vanilla", precision="float8")
