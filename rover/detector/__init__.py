"""The on-robot detection service: model, loop and program (``python -m rover.detector``)."""

from rover.detector.model import Detector, DetectorResult

__all__ = ["Detector", "DetectorResult"]
