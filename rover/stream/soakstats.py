"""The soak's figures, from its samples and its recording: pure functions, no processes or sockets.

- :func:`usage`: RSS, file descriptors and threads of one program at the
  start (the soak takes the first sample after its warm-up), the end and the peak of the run (a restart starts a new
  incarnation; the figures span all of them, and the count of restarts is given);
- :func:`seq_gaps`: messages missing from a stream, by its ``seq``, within
  each run of the publisher (a ``seq`` going backwards is a restart, not a gap);
- :func:`deadman_times`: after each fault that silenced the detector, the
  time from the last fresh detection message to the drive's first ``SAFE`` status
  (both on the recording host's monotonic clock), and until it armed again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence


@dataclass(frozen=True)
class Sample:
    """One look at one process: ``t`` monotonic seconds, RSS in kB."""

    t: float
    pid: int
    rss_kb: int
    fds: int
    threads: int


def read_proc(pid: int) -> Sample | None:
    """The process's RSS, open file descriptors and threads from ``/proc``; None when it is gone."""
    import os
    import time

    try:
        status = {}
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                status[key] = value.split()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        return Sample(time.monotonic(), pid, int(status["VmRSS"][0]), fds, int(status["Threads"][0]))
    except (OSError, KeyError, IndexError, ValueError):
        return None


def usage(samples: Sequence[Sample]) -> dict[str, Any]:
    """``{"rss_mb": {start, end, peak}, "fds": {...}, "threads": {...}, "restarts": n}`` of one program."""
    if not samples:
        return {"samples": 0}
    out: dict[str, Any] = {"samples": len(samples), "restarts": len({s.pid for s in samples}) - 1}
    for name, get in (("rss_mb", lambda s: round(s.rss_kb / 1024, 1)), ("fds", lambda s: s.fds),
                      ("threads", lambda s: s.threads)):
        values = [get(s) for s in samples]
        out[name] = {"start": values[0], "end": values[-1], "peak": max(values)}
    last = [s for s in samples if s.pid == samples[-1].pid]
    half = last[(len(last) - 1) // 2:]
    if len(half) >= 2 and half[0].rss_kb:
        out["rss_change_last_half_pct"] = round(100.0 * (half[-1].rss_kb - half[0].rss_kb) / half[0].rss_kb, 2)
    return out


def seq_gaps(seqs: Iterable[int]) -> dict[str, int]:
    """``{"messages", "runs", "gaps", "missing"}``: ``seq`` values skipped within each run of the publisher."""
    messages = runs = gaps = missing = 0
    previous: int | None = None
    for seq in seqs:
        messages += 1
        if previous is None or seq <= previous:
            runs += 1  # the first message, or the publisher restarted from 0
        elif seq != previous + 1:
            gaps += 1
            missing += seq - previous - 1
        previous = seq
    return {"messages": messages, "runs": runs, "gaps": gaps, "missing": missing}


def deadman_times(faults: Sequence[tuple[str, int]], detections_ns: Sequence[int],
                  drive: Sequence[tuple[int, str]]) -> list[dict[str, Any]]:
    """For each ``(name, t_ns)`` fault, how the drive reacted.

    ``detections_ns``: receive times of the detection messages, ascending;
    ``drive``: ``(t_ns, state)`` of the drive's status messages, ascending.
    ``deadman_s`` is None when the drive was already ``SAFE`` at the fault.
    """
    out = []
    for name, t_fault in faults:
        before = [state for t, state in drive if t <= t_fault]
        entry: dict[str, Any] = {"fault": name, "state_before": before[-1] if before else None,
                                 "deadman_s": None, "rearmed_after_s": None}
        safe = next((t for t, state in drive if t > t_fault and state == "SAFE"), None)
        if entry["state_before"] not in (None, "SAFE") and safe is not None:
            last = [t for t in detections_ns if t < safe]
            if last:
                entry["deadman_s"] = round((safe - last[-1]) / 1e9, 3)
            back = next((t for t, state in drive if t > safe and state != "SAFE"), None)
            if back is not None:
                entry["rearmed_after_s"] = round((back - t_fault) / 1e9, 2)
        out.append(entry)
    return out
