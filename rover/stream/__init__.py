"""Tools on the streams between rover's programs, for people and their programs.

``listen`` prints the detection stream, ``record`` writes the detection and
drive streams to a JSON-lines file, ``replay`` publishes a recording again
with its timing. Each is a ``rover`` subcommand (``rover listen``...) and
uses only :mod:`rover.core` (messages, endpoints and their defaults,
errors), never a program's internals.
"""
