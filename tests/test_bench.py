"""The benchmark's arithmetic: the FLOP count behind pgd1_fraction_of_matmul_peak, and
its best-of-n timer."""

from experiments import bench
from gandef_tf.models import build_classifier


def test_lenet_forward_flops_by_hand():
    # multiply-adds: conv1 28*28 * 5*5*1*32, conv2 14*14 * 5*5*32*64, fc1 3136*1024, logits 1024*10
    macs = 784 * 800 + 196 * 51_200 + 3136 * 1024 + 1024 * 10
    assert bench.forward_flops(build_classifier("mnist")) == 2 * macs == 27_767_808


def test_timed_warms_up_once_and_keeps_the_best(monkeypatch):
    calls, clock = [], iter([0.0, 5.0, 10.0, 11.0, 20.0, 23.0])
    monkeypatch.setattr(bench.time, "perf_counter", lambda: next(clock))
    assert bench.timed(lambda: calls.append(1), 3) == 1.0  # 5, 1 and 3 seconds
    assert len(calls) == 4  # one warm-up (untimed) + three timed


def test_sweep_rows_are_named_by_thread_setting_unless_named():
    assert bench.row_name("", 1, 2, 128) == "inter1_intra2_batch128"
    assert bench.row_name("two_processes_core0", 1, 1, 128) == "two_processes_core0"
