#!/usr/bin/env bash
# Install rover on a Raspberry Pi as two systemd services.
#
#   sudo systemd/install.sh [--enable]
#
# What it does (every step is idempotent; run it again after `git pull`):
#   1. creates the system user `rover` (no login, no home) and adds it to the
#      groups that own the camera (video), GPIO (gpio) and I2C (i2c) devices;
#   2. on a Raspberry Pi, installs with apt the hardware libraries Raspberry Pi
#      OS ships (python3-smbus2, and python3-rpi.gpio on a Pi 4 or
#      python3-rpi-lgpio on a Pi 5); where apt has none, pip builds them, so
#      the compiler and Python headers are installed for that;
#   3. creates the virtual environment PREFIX/venv with --system-site-packages,
#      so it sees apt's picamera2 and numpy (python3-picamera2 on Raspberry Pi
#      OS Bookworm; picamera2 is not installable from pip), and pip-installs
#      this checkout into it with the Pi extras, constrained by
#      requirements/pi-constraints.txt to what works with apt's numpy 1.24
#      (docs/pi.md says why); then checks that picamera2 imports in the venv;
#   4. installs rover-detector.service, rover-drive.service and the optional
#      rover-view.service into /etc/systemd/system (paths rewritten for PREFIX);
#   5. copies config/rover.example.toml to /etc/rover/rover.toml, never
#      overwriting an existing one, and creates /var/lib/rover/models;
#   6. checks that every program the units run exists, then reloads systemd.
#      With --enable it also enables and starts the detector. The drive moves
#      the car: enable it yourself (systemctl enable --now rover-drive).
#
# Exit codes: 0 done, 2 bad usage, 78 a problem with this machine's setup
# (not root, missing file, a unit's program missing after the install, on a
# Pi: picamera2 not importable in the venv, with the fix named).
set -euo pipefail

PREFIX=/opt/rover
DESTDIR=""
PYTHON=python3
EXTRAS=auto
PIP_ARGS=""
MAKE_VENV=1
ENABLE=0
CAMERA=1
APT=auto
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
UNITS=(rover-detector.service rover-drive.service rover-view.service)

usage() {
    cat <<EOF
usage: sudo $0 [options]
  --prefix DIR     install prefix of the virtual environment (default $PREFIX)
  --destdir DIR    stage every file under DIR instead of / (packaging and tests):
                   no user is created and systemd is not touched
  --python PATH    interpreter for the virtual environment (default $PYTHON)
  --extras NAME    pip extras: pi (Pi 4 and earlier), pi5, none, or auto (default:
                   read the device tree's model)
  --no-apt         do not apt-get install the hardware libraries or build tools
  --no-picamera2   a Pi without the CSI camera (camera.source is a USB camera,
                   file or URL): do not require picamera2 in the venv
  --pip-args ARGS  extra arguments for pip install (e.g. "--no-deps --no-index")
  --no-venv        do not create or update the virtual environment
  --enable         enable and start rover-detector.service when done
EOF
}

die() { echo "install.sh: $1" >&2; exit "${2:-78}"; }
say() { echo "install.sh: $1"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) PREFIX="${2:?--prefix needs a directory}"; shift 2 ;;
        --destdir) DESTDIR="${2:?--destdir needs a directory}"; shift 2 ;;
        --python) PYTHON="${2:?--python needs an interpreter}"; shift 2 ;;
        --extras) EXTRAS="${2:?--extras needs pi, pi5, none or auto}"; shift 2 ;;
        --pip-args) PIP_ARGS="${2?--pip-args needs a value}"; shift 2 ;;
        --no-venv) MAKE_VENV=0; shift ;;
        --no-apt) APT=0; shift ;;
        --no-picamera2) CAMERA=0; shift ;;
        --enable) ENABLE=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option $1" 2 ;;
    esac
done

case "$PREFIX" in /*) ;; *) die "--prefix must be an absolute path, not $PREFIX" 2 ;; esac
case "$EXTRAS" in pi|pi5|none|auto) ;; *) die "--extras must be pi, pi5, none or auto, not $EXTRAS" 2 ;; esac
[ "$(id -u)" -eq 0 ] || [ -n "$DESTDIR" ] || die "run as root (sudo $0): it creates a user and writes /etc"
[ -z "$DESTDIR" ] || [ "$ENABLE" -eq 0 ] || die "--enable cannot be combined with --destdir" 2
for unit in "${UNITS[@]}"; do
    [ -f "$REPO/systemd/$unit" ] || die "$REPO/systemd/$unit is missing: run this script from a rover checkout"
done
[ -f "$REPO/config/rover.example.toml" ] || die "$REPO/config/rover.example.toml is missing: run this script from a rover checkout"

ROOT="${DESTDIR%/}"
VENV="$PREFIX/venv"

# -- 1. the rover user ----------------------------------------------------------
owner_opts=""   # staged files (--destdir) keep the caller's ownership
if [ -z "$DESTDIR" ]; then
    if ! getent passwd rover >/dev/null; then
        useradd --system --user-group --home-dir /var/lib/rover --no-create-home \
            --shell /usr/sbin/nologin --comment "rover robot services" rover
        say "created system user rover"
    fi
    for group in video gpio i2c; do
        if getent group "$group" >/dev/null; then
            usermod --append --groups "$group" rover
        else
            say "warning: group $group does not exist on this machine (not a Raspberry Pi OS image?); rover is not in it"
        fi
    done
    owner_opts="-o root -g rover"
fi

# The board, from the device tree (/proc/device-tree is a link to
# /sys/firmware/devicetree/base on a Pi).
board_model() {
    local f
    for f in /proc/device-tree/model /sys/firmware/devicetree/base/model; do
        [ -r "$f" ] && { tr -d '\0' <"$f"; return; }
    done
    true
}
if [ "$EXTRAS" = auto ]; then
    board="$(board_model)"
    case "$board" in
        *"Raspberry Pi 5"*) EXTRAS=pi5 ;;
        *"Raspberry Pi"*) EXTRAS=pi ;;
        *) EXTRAS=none ;;
    esac
    say "board: ${board:-not a Raspberry Pi (no device-tree model)}: extras $EXTRAS"
fi
[ "$APT" != auto ] || { [ -z "$DESTDIR" ] && [ "$EXTRAS" != none ] && command -v apt-get >/dev/null && APT=1; } || APT=0

# -- 2. the hardware libraries from apt -------------------------------------------
# Raspberry Pi OS packages them built for its kernel and numpy; pip would build
# RPi.GPIO from source. Each is installed only when apt has it.
apt_has() { [ -n "$(apt-cache show --no-all-versions "$1" 2>/dev/null | grep -m1 '^Package:')" ]; }
if [ "$APT" -eq 1 ]; then
    wanted="python3-smbus2"
    if [ "$EXTRAS" = pi5 ]; then wanted="$wanted python3-rpi-lgpio"; else wanted="$wanted python3-rpi.gpio"; fi
    from_apt=""
    for pkg in $wanted; do
        apt_has "$pkg" && from_apt="$from_apt $pkg"
    done
    # Where pip has to build RPi.GPIO (not in this apt's archive), it needs a compiler and Python.h.
    if [ "$EXTRAS" = pi ] && ! apt_has python3-rpi.gpio; then
        command -v gcc >/dev/null || from_apt="$from_apt gcc"
        [ -f "/usr/include/python3.$("$PYTHON" -c 'import sys; print(sys.version_info[1])')/Python.h" ] || from_apt="$from_apt python3-dev"
    fi
    if [ -n "$from_apt" ]; then
        # shellcheck disable=SC2086  # a list of package names
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $from_apt >/dev/null \
            || die "apt-get install$from_apt failed (see apt's message above; try sudo apt update first)"
        say "installed with apt:$from_apt"
    fi
fi

# -- 3. the virtual environment ---------------------------------------------------
if [ "$MAKE_VENV" -eq 1 ]; then
    spec="$REPO"
    [ "$EXTRAS" = none ] || spec="$REPO[$EXTRAS]"
    constraints=""
    if [ "$EXTRAS" != none ]; then
        [ -f "$REPO/requirements/pi-constraints.txt" ] || die "$REPO/requirements/pi-constraints.txt is missing: run this script from a rover checkout"
        constraints="-c $REPO/requirements/pi-constraints.txt"
    fi
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found: install python3 and python3-venv (sudo apt install python3-venv)"
    if [ ! -x "$ROOT$VENV/bin/python" ]; then
        "$PYTHON" -m venv --system-site-packages "$ROOT$VENV" \
            || die "cannot create $ROOT$VENV: install python3-venv (sudo apt install python3-venv)"
        say "created $VENV (with system site packages, for apt's picamera2)"
    fi
    # shellcheck disable=SC2086  # PIP_ARGS and constraints are lists of words on purpose
    "$ROOT$VENV/bin/python" -m pip install --disable-pip-version-check --quiet $constraints $PIP_ARGS "$spec" \
        || die "pip could not install $spec into $VENV (see pip's message above)"
    say "installed $spec into $VENV"
    if [ "$EXTRAS" != none ] && [ "$CAMERA" -eq 1 ]; then
        # The detector's default camera.source is picamera2: it must import here,
        # with the numpy the venv resolves (apt's picamera2 is built for apt's numpy 1.x).
        if ! err="$("$ROOT$VENV/bin/python" -c "import picamera2" 2>&1 >/dev/null)"; then
            why="$(printf '%s\n' "$err" | grep -v '^ ' | tail -n 1)"
            numpy_version="$("$ROOT$VENV/bin/python" -c 'import numpy, sys; sys.stdout.write(numpy.__version__ + " from " + numpy.__file__)' 2>/dev/null || echo unknown)"
            case "$why" in
                *ModuleNotFoundError*"'picamera2'"*)
                    die "picamera2 is not installed: sudo apt install python3-picamera2, then run this again (or --no-picamera2 for a USB camera)" ;;
                *numpy*)
                    die "picamera2 cannot be imported in $VENV because of numpy ($why; the venv has numpy $numpy_version, apt's picamera2 needs apt's numpy 1.x): remove the pip numpy with $VENV/bin/pip uninstall -y numpy and run this again" ;;
                *)
                    die "picamera2 cannot be imported in $VENV: $why (check: $VENV/bin/python -c 'import picamera2')" ;;
            esac
        fi
        say "picamera2 imports in $VENV"
    fi
fi

# -- 4. the units ----------------------------------------------------------------
install -d -m 0755 "$ROOT/etc/systemd/system"
for unit in "${UNITS[@]}"; do
    tmp="$(mktemp)"
    sed "s#/opt/rover/#$PREFIX/#g" "$REPO/systemd/$unit" >"$tmp"
    install -m 0644 "$tmp" "$ROOT/etc/systemd/system/$unit"
    rm -f "$tmp"
done
say "installed ${UNITS[*]} into /etc/systemd/system"
install -d -m 0755 "$ROOT$PREFIX/share/doc/rover"
[ ! -f "$REPO/docs/systemd.md" ] || install -m 0644 "$REPO/docs/systemd.md" "$ROOT$PREFIX/share/doc/rover/systemd.md"

# -- 5. config and model directory --------------------------------------------------
# shellcheck disable=SC2086  # owner_opts is empty or a list of words
install -d -m 0750 $owner_opts "$ROOT/etc/rover"
if [ -e "$ROOT/etc/rover/rover.toml" ]; then
    say "kept the existing /etc/rover/rover.toml (the example is config/rover.example.toml)"
else
    # shellcheck disable=SC2086
    install -m 0640 $owner_opts "$REPO/config/rover.example.toml" "$ROOT/etc/rover/rover.toml"
    say "installed /etc/rover/rover.toml from config/rover.example.toml: edit it"
fi
# shellcheck disable=SC2086
install -d -m 0750 $owner_opts "$ROOT/var/lib/rover" "$ROOT/var/lib/rover/models"

# -- 6. check and reload -------------------------------------------------------------
missing=""
for unit in "${UNITS[@]}"; do
    for program in $(grep -E '^Exec[A-Za-z]*=' "$ROOT/etc/systemd/system/$unit" | sed -E 's/^Exec[A-Za-z]*=[-@:+!]*//; s/ .*//'); do
        [ -x "$ROOT$program" ] || missing="$missing $program ($unit)"
    done
done
if [ -n "$missing" ]; then
    [ "$MAKE_VENV" -eq 0 ] || die "programs the units run are missing after the install:$missing"
    say "note: not installed yet (--no-venv):$missing"
fi

if [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    if [ "$ENABLE" -eq 1 ]; then
        systemctl enable --now rover-detector.service
        say "enabled and started rover-detector.service"
    fi
fi
cat <<EOF
install.sh: done. Next:
  put the model at /var/lib/rover/models/detector.onnx (or set detector.model in /etc/rover/rover.toml)
  sudo systemctl enable --now rover-detector      # start now and at every boot
  systemctl status rover-detector; journalctl -u rover-detector -f
  sudo systemctl enable --now rover-drive         # only when the car may move
  sudo systemctl enable --now rover-view          # optional: the live view on http://127.0.0.1:8080/ ([view] preview = true)
  sudo usermod -aG rover "\$USER"                  # to use rover's streams in /run/rover by hand (rover listen, record)
EOF
