"""What this CPU and this model's quantization mean together: the int8 mode and its start-up line.

The export writes its quantization choices into the int8 model's metadata
(``rover.*`` keys, :data:`QUANT_KEYS`); :func:`quant_info` reads them back,
tolerating models without them (older exports, a user's own model).
:func:`int8_mode` combines them with the CPU (machine name and
``/proc/cpuinfo`` flags, :mod:`rover.detector.cpu`) into one of three modes
and the line the detector logs when it starts:

- ``exact``: x86 without VNNI, where rover sets ``session.x64quantprecision=1``
  because the fast AVX2 kernels saturate (:mod:`rover.detector.cpu`). With
  8-bit weights that costs 1.44x the fast mode's inference time, with 7-bit
  weights nothing (docs/export.md, measured on real AVX2 kernels under the
  CPUID mask); the 8-bit line says so and names the re-export that removes
  the cost.
- ``native``: VNNI x86 or ARM, whose int8 kernels sum in 32 bits: exact and
  fast, nothing to do.
- ``float``: a float model, no int8 kernels.

Pure: no I/O, plain strings and sets in, a frozen dataclass out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rover.detector.cpu import X64_PRECISION_KEY, X86_MACHINES, has_vnni, int8_config

#: Metadata keys the export writes into the int8 model (values are strings).
WEIGHT_BITS_KEY = "rover.weight_bits"  #: "8" or "7" (onnxruntime's reduce_range)
ACTIVATIONS_KEY = "rover.activations"  #: "uint8" or "int8"
HEADS_KEY = "rover.heads"  #: the detection heads' precision: "int8" or "float"
FIRST_CONV_KEY = "rover.first_conv"  #: "int8" or "float"
L2NORM_KEY = "rover.l2norm"  #: "int8" or "float"
CALIB_METHOD_KEY = "rover.calib_method"  #: "percentile", "minmax" or "entropy"
QUANT_KEYS = (WEIGHT_BITS_KEY, ACTIVATIONS_KEY, HEADS_KEY, FIRST_CONV_KEY, L2NORM_KEY, CALIB_METHOD_KEY)

#: Exact mode's cost with 8-bit weights on real AVX2 kernels: 205.4 against 142.8 ms
#: (docs/export.md, "What exactness costs on real AVX2 kernels").
EXACT_COST_8BIT = 1.44
#: The re-export that removes that cost.
REEXPORT_COMMAND = "python -m export --weights ... --calib ... --weight-bits 7"


@dataclass(frozen=True)
class QuantInfo:
    """The quantization choices a model's metadata records; None where it records nothing."""

    weight_bits: int | None = None
    activations: str | None = None
    heads: str | None = None
    first_conv: str | None = None
    l2norm: str | None = None
    calib_method: str | None = None

    def summary(self) -> str:
        """``"8-bit weights, uint8 activations, int8 heads"``, or ``"quantization not recorded"``."""
        parts = [f"{self.weight_bits}-bit weights"] if self.weight_bits is not None else []
        parts += [f"{v} {what}" for v, what in ((self.activations, "activations"), (self.heads, "heads")) if v is not None]
        return ", ".join(parts) or "quantization not recorded"


def quant_info(metadata: Mapping[str, str]) -> QuantInfo:
    """The ``rover.*`` quantization keys of ``metadata``; absent or unreadable ones become None.

    Informational only: a model without them (or with a value this version
    does not know) runs exactly as before, it just cannot be described.
    """
    bits = metadata.get(WEIGHT_BITS_KEY, "").strip()
    return QuantInfo(
        weight_bits=int(bits) if bits in ("7", "8") else None,
        activations=metadata.get(ACTIVATIONS_KEY) or None,
        heads=metadata.get(HEADS_KEY) or None,
        first_conv=metadata.get(FIRST_CONV_KEY) or None,
        l2norm=metadata.get(L2NORM_KEY) or None,
        calib_method=metadata.get(CALIB_METHOD_KEY) or None,
    )


@dataclass(frozen=True)
class Int8Mode:
    """How this model's int8 kernels run on this CPU, and the line that tells the user."""

    mode: str  #: "exact", "native" or "float"
    message: str
    #: True when the line names a change that would make inference faster (log it as a warning).
    advice: bool = False


def int8_mode(machine: str, flags: frozenset[str], precision: str, quant: QuantInfo) -> Int8Mode:
    """The int8 mode for ``machine`` with CPU ``flags`` and a model of ``precision`` quantized as ``quant``."""
    if precision != "int8":
        return Int8Mode("float", f"{precision} model: no int8 kernels, no exact mode")
    what = quant.summary()
    if not int8_config(machine, flags):
        cpu = "x86 with VNNI" if machine.lower() in X86_MACHINES and has_vnni(flags) else machine
        return Int8Mode("native", f"int8 model ({what}) on {cpu}: the int8 kernels sum in 32 bits, exact at full speed")
    exact = f"int8 exact mode on ({X64_PRECISION_KEY}=1: this x86 CPU has no VNNI, so its fast int8 kernels would saturate)"
    if quant.weight_bits == 7:
        return Int8Mode("exact", f"{exact}; the model's 7-bit weights fit the fast kernels: no cost ({what})")
    if quant.weight_bits == 8:
        return Int8Mode(
            "exact",
            f"{exact}; with this model's 8-bit weights it takes ~{EXACT_COST_8BIT:.1f}x the fast mode's inference time ({what}): "
            f"re-export with `{REEXPORT_COMMAND}` to remove that cost (docs/detector.md)",
            advice=True,
        )
    return Int8Mode(
        "exact",
        f"{exact}; the model does not record its weight bits (an older or foreign export): with 8-bit weights "
        f"it takes ~{EXACT_COST_8BIT:.1f}x the fast mode's inference time, a model exported with `{REEXPORT_COMMAND}` "
        "runs it at no cost (docs/detector.md)",
        advice=True,
    )
