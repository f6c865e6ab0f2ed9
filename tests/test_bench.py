"""The benchmark's arithmetic: the FLOP count behind pgd1_fraction_of_matmul_peak, and
its best-of-n timer. The two benchmark subprocesses (about 90 s on 2 cores) are marked
`bench`, out of the default run: `make test-all` or `pytest -m bench` runs them."""

import pytest

from experiments import bench
from gandef_tf import estimate
from gandef_tf.models import build_classifier


def test_lenet_forward_flops_by_hand():
    # multiply-adds: conv1 28*28 * 5*5*1*32, conv2 14*14 * 5*5*32*64, fc1 3136*1024, logits 1024*10
    macs = 784 * 800 + 196 * 51_200 + 3136 * 1024 + 1024 * 10
    assert bench.forward_flops(build_classifier("mnist")) == 2 * macs == 27_767_808


@pytest.mark.parametrize("dataset,dropout", [("mnist", "table4"), ("cifar10", "table4"),
                                             ("cifar10", "authors_code")])
def test_pricings_forward_flops_are_the_built_networks(dataset, dropout):
    assert estimate.forward_flops(dataset) == bench.forward_flops(
        build_classifier(dataset, dropout))


def test_timed_warms_up_once_and_keeps_the_best(monkeypatch):
    calls, clock = [], iter([0.0, 5.0, 10.0, 11.0, 20.0, 23.0])
    monkeypatch.setattr(bench.time, "perf_counter", lambda: next(clock))
    assert bench.timed(lambda: calls.append(1), 3) == 1.0  # 5, 1 and 3 seconds
    assert len(calls) == 4  # one warm-up (untimed) + three timed


def test_sweep_rows_are_named_by_thread_setting_unless_named():
    assert bench.row_name("", 1, 2, 128) == "inter1_intra2_batch128"
    assert bench.row_name("two_processes_core0", 1, 1, 128) == "two_processes_core0"


@pytest.mark.bench
def test_gpu_check_writes_rows_and_projections_at_a_tiny_size(tmp_path):
    """`make gpu-check`'s module on the CPU, shrunk: every row and projection is there."""
    import json
    import os
    import subprocess
    import sys

    from conftest import REPO

    out = tmp_path / "g.json"
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.gpu_check", "--train_steps=1", "--batch=4",
         "--steps=1", "--matmul_n=128", "--attack_iter_cap=1", "--methods=mix_pgd,gandef", f"--out={out}"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(out.read_text())
    rows = res["rows"]
    for key in ("bf16_vs_fp32_pgd1_lenet", "bf16_vs_fp32_pgd1_allcnn", "bf16_matmul_gflops",
                "pgd1_bf16_fraction_of_bf16_matmul_peak",
                "bf16_vs_fp32_train_step_mix_pgd_mnist", "bf16_vs_fp32_train_step_mix_pgd_cifar10"):
        assert rows[key] > 0, key
    from gandef_tf.config import get_config

    # the paper preset's epochs: Madry's 84 on MNIST; the authors' 350 for allCNN (presets.FIXES)
    for dataset, epochs in (("mnist", 84), ("cifar10", 350)):
        assert get_config("paper", dataset, "mix_pgd").epochs == epochs
        mix = res["training"][dataset]["mix_pgd"]
        assert mix["epochs"] == epochs and mix["timed_steps"] == 1
        assert mix["projected_hours"] == pytest.approx(
            mix["steps"] * mix["seconds_per_step"] / 3600)
    assert res["training"]["cifar10"]["gandef"]["epochs"] == 350
    assert "projection" in res["note"] and res["device"]


@pytest.mark.bench
def test_bfloat16_sweep_row_is_measured_in_bfloat16(tmp_path):
    """`--only_pgd --precision=bfloat16` (issue: bfloat16 on CPU, the sweeps): a row of its
    own, LeNet's PGD-1 in bfloat16, its rate over the bfloat16 matmul rate."""
    import json
    import os
    import subprocess
    import sys

    from conftest import REPO

    out = tmp_path / "sweep.json"
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.bench", "--only_pgd", "--precision=bfloat16",
         "--batch=4", "--steps=1", "--sweep_batches=8", f"--sweep_out={out}"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    (name, row), = json.loads(out.read_text()).items()
    assert name == "inter0_intra0_batch4_bf16" and row["precision"] == "mixed_bfloat16"
    assert row["pgd1_fraction_of_matmul_peak"] == pytest.approx(
        row["pgd1_gflops"] / row["matmul_gflops"])
    assert row["batch8_vs_batch4_ratio"] > 0 and row["xla_vs_default_ratio"] > 0
