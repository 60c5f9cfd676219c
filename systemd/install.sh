#!/usr/bin/env bash
# Install rover on a Raspberry Pi as two systemd services.
#
#   sudo systemd/install.sh [--enable]
#
# What it does (every step is idempotent; run it again after `git pull`):
#   1. creates the system user `rover` (no login, no home) and adds it to the
#      groups that own the camera (video), GPIO (gpio) and I2C (i2c) devices;
#   2. creates the virtual environment PREFIX/venv with --system-site-packages,
#      so it sees apt's picamera2 (python3-picamera2 on Raspberry Pi OS
#      Bookworm; picamera2 is not installable from pip), and pip-installs this
#      checkout into it with the Pi extras (RPi.GPIO or rpi-lgpio, smbus2);
#   3. installs rover-detector.service, rover-drive.service and the optional
#      rover-view.service into /etc/systemd/system (paths rewritten for PREFIX);
#   4. copies config/rover.example.toml to /etc/rover/rover.toml, never
#      overwriting an existing one, and creates /var/lib/rover/models;
#   5. checks that every program the units run exists, then reloads systemd.
#      With --enable it also enables and starts the detector. The drive moves
#      the car: enable it yourself (systemctl enable --now rover-drive).
#
# Exit codes: 0 done, 2 bad usage, 78 a problem with this machine's setup
# (not root, missing file, a unit's program missing after the install).
set -euo pipefail

PREFIX=/opt/rover
DESTDIR=""
PYTHON=python3
EXTRAS=auto
PIP_ARGS=""
MAKE_VENV=1
ENABLE=0
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
                   read /proc/device-tree/model)
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

# -- 2. the virtual environment -------------------------------------------------
if [ "$MAKE_VENV" -eq 1 ]; then
    if [ "$EXTRAS" = auto ]; then
        model="$(tr -d '\0' </proc/device-tree/model 2>/dev/null || true)"
        case "$model" in
            *"Raspberry Pi 5"*) EXTRAS=pi5 ;;
            *"Raspberry Pi"*) EXTRAS=pi ;;
            *) EXTRAS=none ;;
        esac
    fi
    spec="$REPO"
    [ "$EXTRAS" = none ] || spec="$REPO[$EXTRAS]"
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found: install python3 and python3-venv (sudo apt install python3-venv)"
    if [ ! -x "$ROOT$VENV/bin/python" ]; then
        "$PYTHON" -m venv --system-site-packages "$ROOT$VENV" \
            || die "cannot create $ROOT$VENV: install python3-venv (sudo apt install python3-venv)"
        say "created $VENV (with system site packages, for apt's picamera2)"
    fi
    # shellcheck disable=SC2086  # PIP_ARGS is a list of words on purpose
    "$ROOT$VENV/bin/python" -m pip install --disable-pip-version-check --quiet $PIP_ARGS "$spec" \
        || die "pip could not install $spec into $VENV (see pip's message above)"
    say "installed $spec into $VENV"
    if ! "$ROOT$VENV/bin/python" -c "import picamera2" 2>/dev/null; then
        say "note: picamera2 is not importable from $VENV; on the Pi: sudo apt install python3-picamera2"
    fi
fi

# -- 3. the units ----------------------------------------------------------------
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

# -- 4. config and model directory --------------------------------------------------
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

# -- 5. check and reload -------------------------------------------------------------
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
