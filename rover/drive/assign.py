"""Which box each track takes: a one-to-one assignment of a message's boxes to the tracks, by cost.

Pure: plain numbers. ``costs`` maps ``(track index, box index)`` to the cost
of that pair (the negative log-likelihood of the fit,
:meth:`rover.drive.tracks.Track.cost`); a pair absent from it is not allowed
(outside the gates, or refused).

Best fit first, then pairwise exchanges: while two confirmed tracks would
fit better with their boxes swapped (the sum of their two costs lower: the
likelier of the two hypotheses), they swap. Best fit first alone can give a
track whose prediction is sharp the wrong one of two boxes it fits about
equally well, when a second track fits that box far better: in the crossing
walk (1.3 m/s, 3 frames/s, simulator seed 11) the person behind the target
came out beside them in the frame after the detector had missed them both,
the target's track took the crosser's box by a cost 0.05 lower than its own
box's, and the car followed the crosser; swapped, the two fits cost 0.76
less in all. A track seen in fewer messages than the lock needs (and in one
only, always) takes part in no exchange: a false box is as likely as a
person, and its flat prediction (no walk measured yet) fits every box
nearby about equally, so it would move the target onto a box beside its own
about as often as not. The exchanges keep how many tracks and boxes are
matched.
"""

from __future__ import annotations

from typing import Collection

__all__ = ["assign"]

EPS = 1e-9  # an exchange must lower the sum by more than rounding


def assign(costs: dict[tuple[int, int], float], confirmed: Collection[int]) -> dict[int, int]:
    """Track index -> box index: best fit first, then the exchanges between two ``confirmed`` tracks that lower the sum.

    Each exchange lowers the total cost, so the rounds end; they are also
    bounded by the number of matched tracks (k rounds of k^2 / 2 pairs).
    """
    chosen: dict[int, int] = {}
    taken: set[int] = set()
    for (ti, si), _ in sorted(costs.items(), key=lambda item: (item[1], item[0])):
        if ti not in chosen and si not in taken:
            chosen[ti] = si
            taken.add(si)
    tracks = sorted(ti for ti in chosen if ti in confirmed)
    for _ in range(len(tracks)):
        improved = False
        for i, a in enumerate(tracks):
            for b in tracks[i + 1:]:
                x, y = chosen[a], chosen[b]
                if (a, y) in costs and (b, x) in costs and costs[a, y] + costs[b, x] < costs[a, x] + costs[b, y] - EPS:
                    chosen[a], chosen[b] = y, x
                    improved = True
        if not improved:
            break
    return chosen
