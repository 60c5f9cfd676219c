"""Jobs as picamera2/job.py defines them: functions run by the event loop,
a concurrent.futures.Future for the caller (so a timeout raises TimeoutError)."""

from concurrent.futures import CancelledError, Future  # noqa: F401


class Job:
    def __init__(self, functions, signal_function=None):
        self._functions = list(functions)
        self._future = Future()
        self._future.set_running_or_notify_cancel()
        self._signal_function = signal_function
        self._result = None
        self.calls = 0

    def execute(self):
        """Run what can run now; True when every function is done."""
        assert self._functions, "Job already completed!"
        try:
            while self._functions:
                done, result = self._functions[0]()
                self.calls += 1
                if not done:
                    break
                self._functions.pop(0)
            if not self._functions:
                self._result = result
        except Exception as exc:
            self._future.set_exception(exc)
            self._functions = []
        return not self._functions

    def signal(self):
        assert not self._functions, "Job not finished!"
        if not self._future.done():
            self._future.set_result(self._result)
        if self._signal_function:
            self._signal_function(self)

    def get_result(self, timeout=None):
        return self._future.result(timeout=timeout)

    def cancel(self):
        self._future.set_exception(CancelledError())
