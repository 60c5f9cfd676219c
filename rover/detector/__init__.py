"""The on-robot detection service (``python -m rover.detector``).

Modules: ``config`` (its TOML sections), ``model`` (:class:`Detector`: the
onnxruntime session on a contract model), ``service`` (the main loop),
``stats`` (frame rate and latency figures), ``__main__`` (the program).
Nothing is imported here, so ``rover.detector.config`` stays cheap for tools
such as ``rover listen`` that need no onnxruntime.
"""
