"""Is a new ultrasonic range the calibrating car's own motion towards the wall? Pure logic, no I/O.

:class:`RangeCheck` sees each new median range of ``rover-calibrate motors``
(:mod:`rover.hw.motorcal`) with the time its reading was taken, and names
what is wrong, if anything:

- a *jump*: the range moved farther from the last plausible one than the
  car can travel in the time between their readings (its fastest
  ``max(assumed top speed, 1.5 x the fastest step measured)``, plus
  ``JUMP_M``): a person stepping in, a door, an object taken away. Its
  fit would be nonsense (review 3, H3);
- a *rise*: the range above the start by ``RISE_M`` while a duty is
  driven: the car drives away from the wall, a motor's direction is
  reversed (review 3, H2).

Each must hold for several new ranges in a row (``CONFIRM``,
``RISE_CONFIRM``): two late echoes in one median window (each reads up to
0.34 m too far, :mod:`rover.hw.ultrasonic`) move one median and never the
next ones, while a person in front, or a reversing car, stays. And since
a late echo only ever reads too far, a range that rose (within reach) is
never the new reference: the next true range is compared with the last one
before it.
"""

from __future__ import annotations

import math

#: The range may rise this far above the start while a duty is driven before the car counts as reversing.
RISE_M = 0.05
#: A change of the range larger than the car could cover between the two readings, plus this, is an obstacle.
JUMP_M = 0.03
#: How far a late echo reads too far (0.17 m per ms; the sim's late readings are up to 2 ms late): a range
#: this much nearer than a reference that was itself late is no obstacle. A person stepping in between the
#: car and the wall is nearer by more than this plus the car's reach.
LATE_M = 0.35
#: A jump counts once it held for this many new ranges in a row (a late echo's does not).
CONFIRM = 2
#: A rise above the start counts once this many new ranges in a row showed it (the sim's late echoes: 5 %).
RISE_CONFIRM = 4


class RangeCheck:
    """The checks of one run: ``baseline_m`` the standing range, ``assumed_top_mps`` the fastest a kit can be."""

    def __init__(self, baseline_m: float, assumed_top_mps: float, reverse_hint: str) -> None:
        self.baseline_m, self.assumed_top_mps, self.reverse_hint = baseline_m, assumed_top_mps, reverse_hint
        self._anchor = (math.nan, math.nan)  # the last plausible range and when its reading was taken
        self._jumps = self._rises = 0  # new ranges in a row out of reach / above the start

    @property
    def suspect(self) -> bool:
        """A jump seen and not yet confirmed or dismissed: its range is no speed to learn from."""
        return self._jumps > 0

    def new_range(self, metres: float, taken: float, *, driving: bool, fastest_mps: float) -> str | None:
        """The abort message for this new median range (taken at ``taken``), or None when it is plausible."""
        anchor_m, anchor_t = self._anchor
        if not math.isfinite(anchor_m):
            self._anchor = (metres, taken)
        else:
            span = abs(taken - anchor_t)  # the median may fall back to an older reading
            reach = max(self.assumed_top_mps, 1.5 * fastest_mps) * span + JUMP_M
            # Nearer by up to LATE_M more is allowed: the reference itself may have been a late median.
            if -(reach + LATE_M) <= metres - anchor_m <= reach:
                self._jumps = 0
                if metres <= anchor_m + JUMP_M:  # a rise within reach is a late-echo median, never a new anchor
                    self._anchor = (metres, taken)
            else:
                self._jumps += 1
                if self._jumps >= CONFIRM:
                    return (f"the range jumped from {anchor_m:.2f} to {metres:.2f} m in {span:.2f} s, farther than the car "
                            f"can move ({reach:.2f} m): something entered or left the sensor's view (a person, a door?): "
                            "motors stopped, nothing measured; clear the way to the wall and start again")
        self._rises = self._rises + 1 if driving and metres > self.baseline_m + RISE_M else 0
        if self._rises >= RISE_CONFIRM:
            return (f"the car drives away from the wall ({metres:.2f} m, it started at {self.baseline_m:.2f} m): "
                    f"the motors run backwards: {self.reverse_hint}; motors stopped")
        return None
