"""The live view: a web page showing what the rover sees, its detections and the drive's state.

``rover.detector.preview`` (in the detector) publishes small JPEG frames;
:mod:`rover.view.streams` subscribes to them, the detections and the drive
status; :mod:`rover.view.state` pairs and summarises them;
:mod:`rover.view.server` serves the page. See docs/view.md.
"""
