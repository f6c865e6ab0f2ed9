"""Tuning probe (not project code): train a quick-preset GanDef variant epoch by epoch and
report clean / PGD-1 accuracy on 500 MNIST test images DISJOINT from the quick eval subset."""
import json, sys, time
import numpy as np, tensorflow as tf, keras
tf.config.threading.set_intra_op_parallelism_threads(int(sys.argv[4]) if len(sys.argv) > 4 else 1)
from gandef_tf import config, data, losses, runs, training
from gandef_tf.attacks import spec_for, make_attack

name, epochs, overrides = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
ramp = overrides.pop("gamma_ramp", 0)
lr_after = overrides.pop("lr_after_init", None)
init = overrides.pop("init", None)
method = overrides.pop("method", "gandef")
cfg = config.get_config("quick", "mnist", method, 0, **overrides)
gamma_var = tf.Variable(0.0 if ramp else cfg.gamma, trainable=False)
orig = losses.gandef_classifier_loss
losses.gandef_classifier_loss = lambda y, zc, za, dc, da, gamma, v1=False: orig(y, zc, za, dc, da, gamma_var, v1)
keras.utils.set_random_seed(cfg.seed)
trainer = training.build_trainer(cfg)
if init:
    print("init", init, runs.load_checkpoint(init, trainer))
if lr_after:  # the checkpoint restores the optimizer's own learning-rate variable
    trainer.optimizer.learning_rate.assign(lr_after)
    print("lr now", float(trainer.optimizer.learning_rate.numpy()))
(xtr, ytr), _ = training.load_data(cfg)
(_, _), (xte, yte) = data.load("mnist")
perm = np.random.default_rng(0).permutation(len(yte))
xv, yv = xte[perm[500:1000]], yte[perm[500:1000]]
train_ds, _ = training.make_datasets(cfg, (xtr, ytr), (xv, yv))
class Ramp(keras.callbacks.Callback):
    def __init__(self): self.step = 0
    def on_train_batch_begin(self, b, logs=None):
        if ramp:
            gamma_var.assign(cfg.gamma * min(1.0, self.step / ramp))
        self.step += 1
attack = make_attack(trainer.classifier, spec_for(cfg, "pgd1"))
for ep in range(epochs):
    t = time.time()
    h = trainer.fit(train_ds, epochs=1, verbose=2, callbacks=[Ramp()] if ramp else [])
    clean = np.mean(np.argmax(trainer.classifier.predict(xv, verbose=0), 1) == yv)
    adv = np.concatenate([attack(xv[i:i+250], yv[i:i+250]) for i in range(0, 500, 250)])
    rob = np.mean(np.argmax(trainer.classifier.predict(adv, verbose=0), 1) == yv)
    print(json.dumps({"probe": name, "epoch": ep + 1, "gamma": float(gamma_var.numpy()),
                      "clean": float(clean), "pgd1": float(rob), "sec": round(time.time() - t),
                      **{k: round(float(v[-1]), 4) for k, v in h.history.items()}}), flush=True)
