"""TensorFlow's oneDNN kernels: every command turns them on unless told not to, and
experiments.onednn_bench's ratios come from pairs timed side by side whose children really
ran each setting."""

import json
import math
import os
import subprocess
import sys

import pytest

from conftest import REPO
from experiments.onednn_bench import ratios


@pytest.mark.parametrize("setting,on", [(None, "True"), ("0", "False")])
def test_the_commands_run_onednn_kernels_unless_told_not_to(setting, on):
    """TensorFlow leaves them off on an AVX2-only CPU; every command turns them on (its
    records say so), and a user's TF_ENABLE_ONEDNN_OPTS is kept."""
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    env.update({} if setting is None else {"TF_ENABLE_ONEDNN_OPTS": setting})
    env.update(CUDA_VISIBLE_DEVICES="")
    code = "import experiments; from gandef_tf import runs; print(runs.provenance()['onednn'])"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.split() == [on], out.stderr


def test_ratios_are_geometric_means_of_the_pairs():
    pairs = [({"pure_pgd_step_s": 30.0, "pgd1_examples_per_s": 6.0},
              {"pure_pgd_step_s": 20.0, "pgd1_examples_per_s": 9.0}),
             ({"pure_pgd_step_s": 24.0, "pgd1_examples_per_s": 8.0},
              {"pure_pgd_step_s": 24.0, "pgd1_examples_per_s": 8.0})]
    out = ratios(pairs)
    assert out["per_pair"] == {"pure_pgd_step": [1.5, 1.0], "pgd1": [1.5, 1.0]}
    assert out["pure_pgd_step_onednn_vs_eigen"] == pytest.approx(math.sqrt(1.5))
    assert out["pgd1_onednn_vs_eigen"] == pytest.approx(math.sqrt(1.5))


@pytest.mark.bench
def test_a_tiny_benchmark_runs_both_settings(tmp_path):
    out = tmp_path / "o.json"
    proc = subprocess.run([sys.executable, "-m", "experiments.onednn_bench", "--dataset=mnist",
                           "--batch=4", "--steps=1", "--pgd_iters=1", f"--out={out}"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(out.read_text())
    assert [[p["onednn"] for p in pair] for pair in res["pairs"]] == [[False, True]] * 2
    assert res["pure_pgd_step_onednn_vs_eigen"] > 0 and "onednn" not in res
