"""The foundations every part of rover shares, and nothing else.

Errors and exit codes, the typed TOML config, the detection message schema,
ZeroMQ endpoint rules, the model contract, systemd notification and the
top level of a long-running program. Modules here import only each other
and the standard library, numpy and pyzmq: never another part of rover.
"""
