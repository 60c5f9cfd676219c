# Two commands a newcomer needs:  make demo   and   make test
# Both build their own virtual environment in .venv on first use: the demo
# needs only the runtime (numpy, onnxruntime, OpenCV, pyzmq); the tests add
# the export extra (PyTorch) and pytest.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
CORE   := $(VENV)/.installed-core
TESTS  := $(VENV)/.installed-test
CONSTRAINTS := requirements/test-constraints.txt

SCENARIO ?= straight

.PHONY: demo test test-pi venv clean bench install browser pi-tools soak

$(CORE): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip setuptools wheel
	$(PIP) install --quiet -c $(CONSTRAINTS) -e .
	touch $(CORE)

$(TESTS): $(CORE) $(CONSTRAINTS)
	$(PIP) install --quiet -c $(CONSTRAINTS) -e '.[test]'
	touch $(TESTS)

venv: $(TESTS)

## make demo: the whole system in the simulator: a simulated person and car,
## the real rover.drive process, real ZeroMQ sockets. No car, camera or weights.
## Another scenario: make demo SCENARIO=crossing  (python -m rover.sim --list)
demo: $(CORE)
	$(PY) -m rover.sim --scenario $(SCENARIO)

## make browser: Debian's chromium for the live view's browser test
## (tests/test_view_e2e.py), installed with apt-get when it is missing and we
## are root; otherwise nothing happens and that one test skips, saying why.
browser:
	@if ! command -v chromium >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium for the browser test (apt-get)"; \
		{ DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; } || \
		echo "chromium could not be installed: the browser test will skip"; \
	fi

## make pi-tools: what the emulated Raspberry Pi tests need on this machine
## (qemu-user-static, binfmt-support, debootstrap), installed with apt-get when
## missing and we are root; otherwise those tests skip, saying why.
pi-tools:
	@if ! { command -v qemu-aarch64-static && command -v debootstrap && command -v update-binfmts; } >/dev/null 2>&1 && \
	    [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing qemu-user-static, binfmt-support and debootstrap for the emulated Pi tests (apt-get)"; \
		{ DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		    qemu-user-static binfmt-support debootstrap >/dev/null; } || \
		echo "the emulation tools could not be installed: the emulated Pi tests will skip"; \
	fi

## make test: the whole test suite (unit, end-to-end and the emulated Pi);
## under 25 minutes on a fresh machine (it builds the Pi's rootfs once, cached
## in ~/.cache/rover), under 10 with the cache
test: $(TESTS) browser pi-tools
	$(PY) -m pytest $(PYTEST_ARGS)

## make test-pi: only the emulated Raspberry Pi OS tests (docs/pi.md)
test-pi: $(TESTS) pi-tools
	$(PY) -m pytest -m pi $(PYTEST_ARGS)

## make bench: both benchmarks on ../shared/data/vtest.avi (see README, "Figures")
bench: $(TESTS)
	$(PY) -m export.bench --frames 30 --profile
	$(PY) -m export.bench --frames 30 --threads 1 --cpu-time
	$(PY) -m export.demo --work-dir .bench --no-progress
	$(PY) -m rover.detector.bench --model .bench/models/ssd300_voc_int8.onnx --source ../shared/data/vtest.avi \
		--classes person --frames 120 --rounds 6
	$(PY) -m rover.detector.bench --model .bench/models/ssd300_voc_int8.onnx --source ../shared/data/vtest.avi \
		--classes person --frames 240 --rounds 4 --preview

## make soak: the whole system (detector, drive with the log backend, view, recorder) with faults
## injected; prints RSS, fds and threads per program, seq gaps and dead-man times (docs/sim.md).
## Minutes by default; hours with: make soak DURATION=2h
DURATION ?= 5m
SOAK_MODEL := .bench/models/ssd300_voc_int8.onnx
$(SOAK_MODEL): | $(TESTS)
	$(PY) -m export.demo --work-dir .bench --no-progress
soak: $(CORE) $(SOAK_MODEL)
	$(PY) -m rover.stream.soak $(DURATION) --model $(SOAK_MODEL)

## sudo make install: on the Pi, the two systemd services (systemd/install.sh)
install:
	systemd/install.sh

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .bench sim-out
