"""A ``rover-calibrate motors`` run on the fakes in a process of its own, for the signal tests.

    python -m tests.calibrate_child TMPDIR BACKEND SIGNAL AT_S [--file-state]

At ``AT_S`` virtual seconds into the run it sends ``SIGNAL`` to itself (``KILL``: it prints ``driving``
and waits for the test to kill it). Prints one JSON line: the exit code, whether the motors were driven
when the signal came, and whether they are stopped now.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from rover.hw.ultrasonic import UltrasonicRanger
from tests.test_calibrate_motors import make_rig


def main() -> None:
    tmp, backend, name, at_s = Path(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
    os.environ["ROVER_RUNTIME_DIR"] = str(tmp / "run")
    UltrasonicRanger.start = lambda self: None  # type: ignore[method-assign]  # the ranger runs in virtual time
    state = tmp / "fakehw-state.json" if "--file-state" in sys.argv else None
    rig = make_rig(backend, tmp, state_path=state)
    seen: dict[str, float] = {}

    def fire() -> None:
        seen["duty"] = rig.duties()[-1]
        if name == "KILL":
            print(json.dumps({"driving": seen["duty"]}), flush=True)
            time.sleep(60)  # the test kills this process now
        os.kill(os.getpid(), getattr(signal, f"SIG{name}"))

    rig.time.at.append((at_s, fire))
    code = rig.run("--yes")
    print(json.dumps({"code": code, "duty_at_signal": seen.get("duty"), "stopped": rig.motors_stopped(),
                      "centred": rig.servos_centred()}), flush=True)


if __name__ == "__main__":
    main()
