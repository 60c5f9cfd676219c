"""rover on an emulated Raspberry Pi OS Bookworm (arm64), installed as a Pi owner would.

One emulated Pi 4 per session (tests/pi_harness.py): arm64 Debian 12 with
apt's numpy 1.24.2, a picamera2 stand-in whose C extension needs that numpy's
C ABI, and the groups of Raspberry Pi OS. In it, the README's steps run as the
``pi`` user (``sudo make install``, the model copied, ``rover config check``);
then the units' ExecStart lines run as the ``rover`` user (not a systemd boot:
see docs/pi.md) and a subscriber on this machine receives the detector's
messages. The numbers tests run the same input tensor through arm64 and x86
onnxruntime. Everything skips with one line where the machine cannot emulate
(not root, no binfmt_misc, the archive unreachable); ``make test-pi`` runs
only these tests.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import time
from pathlib import Path

import numpy as np
import pytest

from tests import pi_harness

pytestmark = [pytest.mark.pi, pytest.mark.slow, pytest.mark.timeout(2400)]

REPO = Path(__file__).resolve().parents[1]
VENV = "/opt/rover/venv"
GUEST_MODEL = "/var/lib/rover/models/detector.onnx"
CLIP_FRAMES = 24
CLIP_SIZE = (640, 480)
#: Detection-level agreement (fraction of detections matched with the same class at
#: IoU >= 0.5) required of arm64 int8 against x86 int8 and against float. ARM and x86
#: run different int8 kernels (x86 rewrites the activations to uint8 for VPDPBUSD,
#: arm64 keeps int8), so their int8 results differ by rounding of the same order as
#: quantization itself: ARM int8 must agree with x86 int8 at least as well as x86 int8
#: agrees with float, less INT8_SLACK, and never below AGREEMENT_FLOAT. See docs/pi.md.
INT8_SLACK = 0.05
AGREEMENT_FLOAT = 0.75
MATCH_IOU = 0.5
#: The comparison keeps rover's default score threshold and NMS, and the 100 best
#: detections: with top_k 20 a tie-break at the cut decides what is compared.
DETECTION_SCORE = 0.5
COMPARE_TOP_K = 100


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clip(video: Path) -> bytes:
    """CLIP_FRAMES frames of the pedestrian video as the stand-in camera's .npy scene (B,G,R)."""
    import cv2

    capture = cv2.VideoCapture(str(video))
    frames = []
    while len(frames) < CLIP_FRAMES:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.resize(frame, CLIP_SIZE, interpolation=cv2.INTER_AREA))
    capture.release()
    assert frames, f"no frame decoded from {video}"
    out = io.BytesIO()
    np.save(out, np.stack(frames))
    return out.getvalue()


@pytest.fixture(scope="session")
def emulated_pi(tmp_path_factory, vtest_video, exported_models):
    """A Pi 4 with rover installed by the README's steps; yields (pi, figures)."""
    reason = pi_harness.unavailable_reason()
    if reason:
        pytest.skip(f"emulated Pi unavailable: {reason}")
    logs = tmp_path_factory.mktemp("pi")
    figures: dict[str, float | str] = {}
    rootfs, built = pi_harness.ensure_rootfs(logs / "build-rootfs.log")
    figures["rootfs_build_s"] = built if built is not None else "cached"
    pi = pi_harness.EmulatedPi(rootfs, model=4, stage=logs / "stage")
    pi.start()
    try:
        start = time.monotonic()
        pi.copy_checkout()
        pi.install_picamera2_standin(_clip(vtest_video))
        figures["prepare_s"] = time.monotonic() - start
        start = time.monotonic()
        install = pi.run(["make", "install"], **pi_harness.SUDO, cwd=pi_harness.GUEST_CHECKOUT, timeout=1500)
        figures["install_s"] = time.monotonic() - start
        (logs / "install.log").write_text(install.stdout + install.stderr)
        assert install.returncode == 0, f"sudo make install failed ({install.returncode}):\n{install.stdout}\n{install.stderr}"
        # README: put the model where the config expects it.
        copy = pi.run(["install", "-m", "0640", "-g", "rover", "/dev/stdin", GUEST_MODEL], **pi_harness.SUDO,
                      input=exported_models.int8_path.read_bytes(), timeout=300)  # fmt: skip
        assert copy.returncode == 0, copy.stderr
        yield pi, figures, install
    finally:
        pi.close()
        print(f"\nemulated Pi figures: {json.dumps(figures)}")


def test_a_pi_5_gets_the_pi5_extras_and_its_cpu(tmp_path_factory):
    """The same rootfs as a Pi 5: the installer reads the board from the device tree (no venv: cheap)."""
    reason = pi_harness.unavailable_reason()
    if reason:
        pytest.skip(f"emulated Pi unavailable: {reason}")
    rootfs, _ = pi_harness.ensure_rootfs(tmp_path_factory.mktemp("pi5") / "build-rootfs.log")
    with pi_harness.EmulatedPi(rootfs, model=5, stage=tmp_path_factory.mktemp("pi5-stage")) as pi5:
        pi5.copy_checkout()
        result = pi5.run(["systemd/install.sh", "--no-venv", "--no-apt"], **pi_harness.SUDO, cwd=pi_harness.GUEST_CHECKOUT,
                         timeout=600)  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        assert "install.sh: board: Raspberry Pi 5 Model B Rev 1.0: extras pi5" in result.stdout
        cpu = pi5.run(["sh", "-c", "uname -m; grep -m1 'CPU part' /proc/cpuinfo"], timeout=120)
        assert cpu.stdout.split() == ["aarch64", "CPU", "part", ":", "0xd0b"]  # Cortex-A76


def _guest_python(pi, code: str, timeout: float = 600):
    return pi.run([f"{VENV}/bin/python", "-c", code], timeout=timeout)


def test_install_keeps_apts_numpy_and_picamera2_imports(emulated_pi):
    pi, _, install = emulated_pi
    assert "install.sh: board: Raspberry Pi 4 Model B Rev 1.4: extras pi" in install.stdout
    assert "picamera2 imports in /opt/rover/venv" in install.stdout
    probe = _guest_python(pi, (
        "import importlib.util, json, numpy, cv2, onnxruntime, zmq, picamera2, smbus2; "
        "print(json.dumps({'numpy': numpy.__version__, 'numpy_file': numpy.__file__, 'cv2': cv2.__version__, "
        "'ort': onnxruntime.__version__, 'pyzmq': zmq.__version__, 'smbus2_file': smbus2.__file__, 'picamera2': picamera2.__file__, "
        "'gpio_file': importlib.util.find_spec('RPi.GPIO').origin}))"
    ))  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout.strip().splitlines()[-1])
    print(f"\nemulated Pi 4 venv: {found}")
    assert found["numpy"] == "1.24.2" and found["numpy_file"].startswith("/usr/lib/python3/dist-packages/"), found
    # apt's, not built by pip. (RPi.GPIO is not imported: it refuses to on a machine whose
    # /proc/device-tree lacks a Pi's revision, which procfs cannot be given here.)
    assert found["smbus2_file"].startswith("/usr/lib/python3/dist-packages/"), "smbus2 should come from apt"
    assert found["gpio_file"].startswith("/usr/lib/python3/dist-packages/RPi/"), "RPi.GPIO should come from apt"
    assert found["picamera2"].startswith("/usr/lib/python3/dist-packages/picamera2/")
    assert int(found["cv2"].split(".")[0]) == 4 and int(found["cv2"].split(".")[1]) < 12


def test_config_check_passes_as_the_readme_says(emulated_pi):
    pi, _, _ = emulated_pi
    # README: as the services' user (sudo -u rover): /etc/rover is root:rover 0750, the pi user may not read it.
    check = pi.run([f"{VENV}/bin/rover", "config", "check", "--config", "/etc/rover/rover.toml"], user="rover", timeout=600)
    assert check.returncode == 0, check.stdout + check.stderr
    as_pi = pi.run([f"{VENV}/bin/rover", "config", "check", "--config", "/etc/rover/rover.toml"], user="pi", timeout=600)
    assert as_pi.returncode == 78 and "not readable by this user" in as_pi.stderr, as_pi.stdout + as_pi.stderr


def test_capture_saves_calibration_frames_from_the_csi_camera(emulated_pi, tmp_path):
    """`rover capture` as the rover user (group video) reads the stand-in CSI camera through picamera2."""
    import cv2

    pi, _, _ = emulated_pi
    result = pi.run([f"{VENV}/bin/rover", "capture", "--out", "/tmp/calib", "--frames", "3", "--every", "0.2",
                     "--config", "/etc/rover/rover.toml"], user="rover", timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    names = sorted(p.name for p in pi.path("/tmp/calib").iterdir())
    assert names == ["frame_00000.png", "frame_00001.png", "frame_00002.png"]
    local = tmp_path / "frame.png"
    local.write_bytes(pi.path("/tmp/calib/frame_00000.png").read_bytes())
    assert cv2.imread(str(local)).shape == (480, 640, 3)
    assert result.stdout.strip().endswith("(python -m export --calib /tmp/calib ...)")


def test_a_numpy_2_venv_is_refused_with_the_fix_named(emulated_pi):
    """The known break: numpy 2 in the venv makes apt's picamera2 fail to import; install.sh exits 78 naming it."""
    pi, _, _ = emulated_pi
    broken = "/opt/broken"
    made = pi.run(["sh", "-c", f"python3 -m venv --system-site-packages {broken}/venv && "
                               f"{broken}/venv/bin/pip install --quiet --disable-pip-version-check 'numpy>=2'"], timeout=900)  # fmt: skip
    assert made.returncode == 0, made.stderr
    direct = pi.run([f"{broken}/venv/bin/python", "-c", "import picamera2"], timeout=300)
    assert direct.returncode != 0
    assert "ValueError: numpy.dtype size changed, may indicate binary incompatibility" in direct.stderr
    result = pi.run(["systemd/install.sh", "--prefix", broken, "--pip-args", "--no-deps"], **pi_harness.SUDO,
                    cwd=pi_harness.GUEST_CHECKOUT, timeout=900)  # fmt: skip
    assert result.returncode == 78, result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("install.sh: picamera2 cannot be imported in /opt/broken/venv because of numpy")
    assert "numpy.dtype size changed" in last and "pip uninstall -y numpy" in last


def _exec_start(pi, unit: str) -> list[str]:
    text = pi.path(f"/etc/systemd/system/{unit}").read_text()
    line = next(l for l in text.splitlines() if l.startswith("ExecStart="))
    return line.split("=", 1)[1].split()


def _unit_user(pi, unit: str) -> str:
    text = pi.path(f"/etc/systemd/system/{unit}").read_text()
    return next(l.split("=", 1)[1].strip() for l in text.splitlines() if l.startswith("User="))


def _set_config(pi, **sections: dict) -> None:
    """Set keys in the installed config, as a person editing it would: replace the key's line, or add it."""
    path = pi.path("/etc/rover/rover.toml")
    lines = path.read_text().splitlines()
    for section, values in sections.items():
        header = f"[{section}]"
        if header not in lines:
            lines += ["", header]
        start = lines.index(header) + 1
        end = next((i for i in range(start, len(lines)) if lines[i].startswith("[")), len(lines))
        for key, value in values.items():
            line = f"{key} = {json.dumps(value)}"
            found = next((i for i in range(start, end) if re.match(rf"{key}\s*=", lines[i])), None)
            if found is None:
                lines.insert(start, line)
                end += 1
            else:
                lines[found] = line
    path.write_text("\n".join(lines) + "\n")


def test_detector_and_drive_run_as_the_units_would(emulated_pi, tmp_path):
    """The installed detector reads the (stand-in) CSI camera and publishes valid v1 messages to this machine."""
    import jsonschema
    import zmq

    pi, figures, _ = emulated_pi
    det_port, drive_port = _free_port(), _free_port()
    _set_config(pi, stream={"bind": f"tcp://127.0.0.1:{det_port}"},
                drive={"connect": f"tcp://127.0.0.1:{det_port}", "publish": f"tcp://127.0.0.1:{drive_port}"})  # fmt: skip
    config = pi.path("/etc/rover/rover.toml").read_text()
    assert 'source = "picamera2"' in config
    detector_cmd, drive_cmd = _exec_start(pi, "rover-detector.service"), _exec_start(pi, "rover-drive.service")
    user = _unit_user(pi, "rover-detector.service")
    schema = json.loads((REPO / "rover" / "schemas" / "detection-v1.schema.json").read_text())

    context = zmq.Context.instance()
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"detections")
    sub.connect(f"tcp://127.0.0.1:{det_port}")
    received: list[dict] = []

    def receive(until, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not until() and time.monotonic() < deadline:
            if sub.poll(1000):
                _topic, _, payload = sub.recv().partition(b" ")
                message = json.loads(payload)
                jsonschema.validate(message, schema)
                received.append(message)

    detector = pi.popen(detector_cmd, user=user, stdout=tmp_path / "detector.log")
    drive = None
    try:
        # One emulated inference takes 30-90 s: the warm-up, then one frame, is what is waited for.
        start = time.monotonic()
        receive(lambda: detector.poll() is not None or any(m["status"] == "ok" for m in received), 900)
        figures["detector_first_frame_s"] = time.monotonic() - start
        ok = [m for m in received if m["status"] == "ok"]
        assert ok, f"no ok message in time:\n{(tmp_path / 'detector.log').read_text()}"
        assert (ok[0]["frame"]["width"], ok[0]["frame"]["height"]) == (640, 480)
        assert "picamera2 camera 0 (640x480 RGB888)" in (tmp_path / "detector.log").read_text()
        drive = pi.popen([*drive_cmd, "--backend", "log", "--follow", "person"], user=user, stdout=tmp_path / "drive.log")
        time.sleep(20)  # it connects and hears the stream (and stops the car: detections go stale between frames)
        assert drive.poll() is None, (tmp_path / "drive.log").read_text()
    finally:
        for name, child in (("rover-drive", drive), ("rover-detector", detector)):
            if child is None or child.poll() is not None:
                continue
            for pid in pi.guest_pids(name):
                os.kill(pid, signal.SIGTERM)
        # The detector ends its stream with a "stopping" status message (after the inference in progress).
        receive(lambda: detector.poll() is not None and not sub.poll(0), 300)
        sub.close(linger=0)
        for child in (drive, detector):
            if child is not None:
                try:
                    child.wait(timeout=60)
                except Exception:
                    pass
    drive_log = (tmp_path / "drive.log").read_text()
    print(f"\nrover-drive --backend log on the emulated Pi:\n{drive_log[-1500:]}")
    assert drive.returncode == 0, drive_log
    assert detector.returncode == 0, (tmp_path / "detector.log").read_text()
    assert received[-1]["status"] == "stopping", received[-1]
    assert f"following 'person' from tcp://127.0.0.1:{det_port} with backend log" in drive_log
    assert drive_log.strip().splitlines()[-1].split(" ", 2)[2].startswith("close motors=stopped"), drive_log


@pytest.mark.parametrize("program, args", [("rover-safestop", []), ("rover-calibrate", ["steering", "--position", "0"])])
def test_hardware_tools_say_what_is_missing_in_a_line_each(emulated_pi, program, args):
    """No GPIO or I2C hardware here: one line per part that could not be reached, never a traceback."""
    pi, _, _ = emulated_pi
    result = pi.run([f"{VENV}/bin/{program}", *args, "--config", "/etc/rover/rover.toml"], user="rover", timeout=600)
    print(f"\n{program}: exit {result.returncode}:\n{result.stderr.strip()}")
    assert result.returncode != 0
    lines = [l for l in result.stderr.strip().splitlines() if l]
    assert 1 <= len(lines) <= 2 and all(l.startswith(f"{program}: ") for l in lines), result.stderr
    assert "Traceback" not in result.stderr and "i2c" in result.stderr.lower()


# -- numbers on ARM -------------------------------------------------------------------


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (N, 4) with every box in ``b`` (M, 4), x1 y1 x2 y2."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter + 1e-12)


def agreement(ours, reference) -> float:
    """Fraction of the detections of both sides matched one-to-one (same class, IoU >= MATCH_IOU), greedy by score."""
    total = len(ours) + len(reference)
    if total == 0:
        return 1.0
    if len(ours) == 0 or len(reference) == 0:
        return 0.0
    iou = _iou(ours.boxes, reference.boxes)
    used: set[int] = set()
    matched = 0
    for i in range(len(ours)):  # highest score first
        for j in np.argsort(-iou[i]):
            if iou[i, j] < MATCH_IOU:
                break
            if j not in used and ours.class_ids[i] == reference.class_ids[j]:
                used.add(int(j))
                matched += 1
                break
    return 2 * matched / total


@pytest.fixture(scope="session")
def arm_outputs(emulated_pi, exported_models, shared_data, tmp_path_factory):
    """Float and int8 boxes/scores of arm64 onnxruntime on messi5.jpg, and x86's on the same tensor."""
    import cv2
    import onnxruntime as ort

    from rover.detector.model import open_session
    from rover.detector.preprocess import Preprocessor

    pi, figures, _ = emulated_pi
    image = cv2.imread(str(shared_data / "messi5.jpg"))
    tensor = Preprocessor(300, 300)(image, "bgr").copy()
    work = "/tmp/numbers"
    pi.write_file(f"{work}/tensor.npy", _npy(tensor))
    for path in (exported_models.float_path, exported_models.int8_path):
        pi.write_file(f"{work}/{path.name}", path.read_bytes())
    script = f"{pi_harness.GUEST_CHECKOUT}/tests/pi/arm_inference.py"
    result = pi.run([f"{VENV}/bin/python", script, f"{work}/tensor.npy", work,
                     f"{work}/{exported_models.int8_path.name}", f"{work}/{exported_models.float_path.name}"], timeout=1200)  # fmt: skip
    assert result.returncode == 0, result.stderr
    for line in result.stdout.splitlines():
        run = json.loads(line)
        figures[f"arm_{run['model']}_inference_s"] = run["inference_s"]
        figures[f"arm_{run['model']}_load_s"] = run["load_s"]
    out = {}
    keep = tmp_path_factory.mktemp("arm-outputs")  # kept after the session, for a look at the numbers
    for kind, path in (("float", exported_models.float_path), ("int8", exported_models.int8_path)):
        (keep / f"{kind}.npz").write_bytes(pi.path(f"{work}/{path.stem}.npz").read_bytes())
        arm = np.load(keep / f"{kind}.npz")
        boxes, scores = open_session(path).run(["boxes", "scores"], {"image": tensor})
        out[kind] = {"arm": (arm["boxes"], arm["scores"]), "x86": (boxes, scores)}
    local = tmp_path_factory.mktemp("arm-graph") / "int8.optimized.onnx"
    local.write_bytes(pi.path(f"{work}/{exported_models.int8_path.stem}.optimized.onnx").read_bytes())
    out["int8_optimized"] = local
    out["ort"] = ort.__version__
    return out


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def test_float_model_agrees_across_architectures_to_rounding(arm_outputs):
    for i, name in enumerate(("boxes", "scores")):
        diff = float(np.abs(arm_outputs["float"]["arm"][i] - arm_outputs["float"]["x86"][i]).max())
        print(f"\nfloat {name}: max |arm64 - x86| = {diff:.2e}")
        assert diff < 1e-4


def test_int8_detections_agree_across_architectures(arm_outputs, exported_models):
    """ARM and x86 use different int8 kernels: raw scores differ, detections must agree within tolerance."""
    from rover.detector.postprocess import PostprocessConfig, select

    scores_diff = np.abs(arm_outputs["int8"]["arm"][1] - arm_outputs["int8"]["x86"][1])
    argmax = (arm_outputs["int8"]["arm"][1][0].argmax(1) == arm_outputs["int8"]["x86"][1][0].argmax(1)).mean()
    config = PostprocessConfig(score_threshold=DETECTION_SCORE, top_k=COMPARE_TOP_K)
    arm_int8 = select(*arm_outputs["int8"]["arm"], config)
    x86_int8 = select(*arm_outputs["int8"]["x86"], config)
    arm_float = select(*arm_outputs["float"]["arm"], config)
    x86_float = select(*arm_outputs["float"]["x86"], config)
    vs_x86, vs_float = agreement(arm_int8, x86_int8), agreement(arm_int8, arm_float)
    quantization = agreement(x86_int8, x86_float)  # what int8 itself costs, on x86
    print(f"\nint8 scores |arm64 - x86|: max {scores_diff.max():.2e}, mean {scores_diff.mean():.2e}; "
          f"argmax class equal for {100 * argmax:.1f} % of priors; detections (score >= {DETECTION_SCORE}): "
          f"arm int8 {len(arm_int8)}, x86 int8 {len(x86_int8)}, arm float {len(arm_float)}; "
          f"agreement arm int8 vs x86 int8 {vs_x86:.2f}, vs float {vs_float:.2f}; "
          f"x86 int8 vs float {quantization:.2f}")  # fmt: skip
    assert len(x86_int8) > 0, "the reference found nothing: the comparison would say nothing"
    assert vs_x86 >= max(AGREEMENT_FLOAT, quantization - INT8_SLACK)
    assert vs_float >= AGREEMENT_FLOAT


def test_onnxruntime_on_arm_builds_int8_kernels(arm_outputs):
    """The graph arm64 onnxruntime executes runs every convolution and residual Add in int8, as on x86."""
    import onnx

    ops = [n.op_type for n in onnx.load(str(arm_outputs["int8_optimized"])).graph.node]
    fused, convs = ops.count("QLinearConv"), ops.count("QLinearConv") + ops.count("Conv")
    adds = ops.count("QLinearAdd")
    print(f"\narm64 onnxruntime: {fused} QLinearConv of {convs} convolutions, {adds} QLinearAdd")
    assert fused == convs == 70, f"only {fused} of {convs} convolutions run as QLinearConv on arm64"
    assert adds == 16, f"{adds} of the 16 residual Adds run as QLinearAdd on arm64"
