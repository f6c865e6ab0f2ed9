"""Tuning check (not project code): clean / PGD-1 accuracy of a saved classifier on the 500
MNIST test images DISJOINT from the quick eval subset (the probes' validation set).

    python results/quick/mnist/tuning/probes/validate.py runs/quick/mnist/gandef/seed0
"""
import json, sys
import numpy as np, keras
from gandef_tf import config, data
from gandef_tf.attacks import spec_for, make_attack

run_dir = sys.argv[1]
cfg = config.Config.from_dict(json.load(open(f"{run_dir}/config.json"))["config"])
clf = keras.models.load_model(f"{run_dir}/classifier.keras")
(_, _), (xte, yte) = data.load("mnist")
perm = np.random.default_rng(0).permutation(len(yte))
xv, yv = xte[perm[500:1000]], yte[perm[500:1000]]
attack = make_attack(clf, spec_for(cfg, "pgd1"))
clean = np.mean(np.argmax(clf.predict(xv, verbose=0), 1) == yv)
adv = np.concatenate([attack(xv[i:i+250], yv[i:i+250]) for i in range(0, 500, 250)])
rob = np.mean(np.argmax(clf.predict(adv, verbose=0), 1) == yv)
print(json.dumps({"run": run_dir, "clean": float(clean), "pgd1": float(rob)}))
