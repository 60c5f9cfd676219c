"""rover.detector.cpu: exact int8 on x86 CPUs whose int8 kernels saturate, and nowhere else."""

from __future__ import annotations

import pytest

from rover.detector import model as detector_model_module
from rover.detector.cpu import (
    X64_PRECISION_KEY,
    cpu_flags,
    int8_config,
    this_cpu_int8_config,
)

#: /proc/cpuinfo flags (abridged to the vector extensions) of the CPUs that matter.
ZEN3 = "fpu sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma avx2 bmi2 sha_ni vaes vpclmulqdq"  # EPYC 7003 (Milan)
ZEN5 = ZEN3 + " avx512f avx512dq avx512cd avx512bw avx512vl avx512_vnni avx512_bf16 avx_vnni"
SKYLAKE_X = ZEN3 + " avx512f avx512dq avx512cd avx512bw avx512vl"  # AVX-512 without VNNI: vpmaddubsw too
ALDER_LAKE = ZEN3 + " avx_vnni"  # AVX-VNNI on 256 bits, no AVX-512


def _flags(names: str) -> frozenset[str]:
    return cpu_flags(f"processor\t: 0\nflags\t\t: {names}\nbugs\t\t: spectre_v1\n")


@pytest.mark.parametrize("flags, exact", [(ZEN3, True), (SKYLAKE_X, True), (ZEN5, False), (ALDER_LAKE, False)],
                         ids=["zen3-avx2", "skylake-x-avx512-no-vnni", "zen5-avx512-vnni", "alder-lake-avx-vnni"])  # fmt: skip
def test_x86_without_vnni_gets_onnxruntimes_exact_int8_kernels(flags, exact):
    assert int8_config("x86_64", _flags(flags)) == ({X64_PRECISION_KEY: "1"} if exact else {})


def test_arm_never_gets_the_x86_option():
    """The Pi: aarch64 /proc/cpuinfo has Features, not flags, and ARM's dot-product kernels do not saturate."""
    cpuinfo = "processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid asimdrdm lrcpc dcpop asimddp\n"
    assert cpu_flags(cpuinfo) == frozenset()
    assert int8_config("aarch64", cpu_flags(cpuinfo)) == {}


def test_unreadable_cpuinfo_on_x86_is_treated_as_no_vnni(tmp_path, monkeypatch):
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    assert this_cpu_int8_config(tmp_path / "absent") == {X64_PRECISION_KEY: "1"}
    (tmp_path / "cpuinfo").write_text(f"flags\t\t: {ZEN5}\n")
    assert this_cpu_int8_config(tmp_path / "cpuinfo") == {}


def _entry(options, key: str) -> str | None:
    try:
        return options.get_session_config_entry(key)
    except RuntimeError:  # onnxruntime raises for a key never set
        return None


@pytest.mark.parametrize("flags, expected", [(ZEN3, "1"), (ZEN5, None)], ids=["zen3", "zen5"])
def test_rovers_session_carries_the_option_only_where_needed(contract_model, monkeypatch, flags, expected):
    monkeypatch.setattr(detector_model_module, "this_cpu_int8_config", lambda: int8_config("x86_64", _flags(flags)))
    session = detector_model_module.open_session(contract_model)
    assert _entry(session.get_session_options(), X64_PRECISION_KEY) == expected
