"""What a result was made with and on: the code's commit, the device, TensorFlow's threads
and kernels.

    from gandef_tf import host
    host.commit()        # '1fd4215...' ('-dirty' with uncommitted code; outputs don't count)
    host.device()        # 'CPU (AMD EPYC, AVX2, 2 cores, x86_64)' or '1x GPU (...)'
    host.onednn()        # True when this process runs TensorFlow's oneDNN CPU kernels

gandef_tf.runs re-exports these and builds each record's provenance from them.
"""

import functools
import os
import platform
import subprocess
import sys
from pathlib import Path


@functools.lru_cache(maxsize=1)
def commit(where=None):
    """The commit when first asked (at the start of a run), not when results are written."""
    where = where or Path(__file__).parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, cwd=where)
        # Outputs (results/, figures/) do not make the code dirty: a render that follows
        # another in one `make` call, or a run beside uncommitted results, names the commit.
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                ":(top)", ":(top,exclude)results", ":(top,exclude)figures"],
                               capture_output=True, text=True, timeout=10,
                               cwd=where).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except OSError:
        return "unknown"


def cpu_summary(cpuinfo):
    """'Intel(R) Xeon(R) Processor, AVX-512, AMX-BF16' from /proc/cpuinfo's text: hosts of
    one machine kind can differ in their vector units, and with them every CPU timing."""
    fields = dict(line.split(":", 1) for line in cpuinfo.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set(fields.get("flags", "").split())
    isa = next((name for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"))
                if flag in flags), None)
    # Native bfloat16 decides the CPU presets' training precision (config.default_precision).
    bf16 = next((name for flag, name in (("amx_bf16", "AMX-BF16"), ("avx512_bf16", "AVX512-BF16"))
                 if flag in flags), None)
    return ", ".join(v for v in (fields.get("model name"), isa, bf16) if v)


def device():
    """The GPUs TensorFlow sees, else the CPU. On Linux without a GPU's device file the CPU
    is named without starting TensorFlow, so that pricing and refusals take a second."""
    no_gpu = platform.system() == "Linux" and not (any(Path("/dev").glob("nvidia[0-9]*"))
                                                   or Path("/dev/kfd").exists())
    gpus = []
    if not no_gpu or "tensorflow" in sys.modules:
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        names = [tf.config.experimental.get_device_details(g).get("device_name", g.name)
                 for g in gpus]
        return f"{len(gpus)}x GPU ({', '.join(names)})"
    try:
        cpu = cpu_summary(Path("/proc/cpuinfo").read_text())
    except OSError:  # not Linux
        cpu = platform.processor()
    return f"CPU ({cpu + ', ' if cpu else ''}{os.cpu_count()} cores, {platform.machine()})"


def threads():
    """TensorFlow's thread pools as set (0: its default, one thread per usable core) and the
    usable cores. On a CPU only a one-thread run repeats bit for bit: with several threads
    the order of floating-point sums varies from run to run (docs/usage.md)."""
    import tensorflow as tf

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads(), "cpus": cpus}


def intra_op_threads(record):
    """The intra-op threads a threads() record ran with (0 resolved to the usable cores)."""
    return record["intra_op"] or record["cpus"]


def onednn():
    """Whether this process runs TensorFlow's oneDNN CPU kernels (None: cannot tell).
    TensorFlow turns them on by default only on some CPUs (not on an AVX2-only EPYC), and
    TF_ENABLE_ONEDNN_OPTS, read once at import, overrides that; experiments/__init__.py
    sets it to 1. The kernels sum in another order, so a bit-for-bit reproduction needs
    the same setting."""
    import tensorflow as tf  # noqa: F401  (the flag is settled by TensorFlow's import)

    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:  # a private module: a TensorFlow without it records None
        return None
    is_on = getattr(_pywrap_util_port, "IsMklEnabled", None)
    return None if is_on is None else bool(is_on())
