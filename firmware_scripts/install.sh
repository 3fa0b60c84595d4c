#!/usr/bin/env bash
# Install edge-track as a service on Raspberry Pi OS or NVIDIA JetPack.
#   sudo ./firmware_scripts/install.sh [--config /etc/edge-track/device.yaml]
# A dedicated user, a venv in /opt/edge-track (with system site packages on Jetson for TensorRT
# and the GStreamer-enabled OpenCV, and on the Pi for picamera2), the udev rules, the unit.
# Sourcing the file defines the functions without installing anything (the tests do that).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"

# Prints "<platform> <pip extras>". The Pi extra carries smbus2, which the pca9685 output needs.
detect_platform() {
  local tegra="${1:-/etc/nv_tegra_release}" model="${2:-/proc/device-tree/model}"
  if [ -f "$tegra" ]; then
    echo "jetson gimbal,jetson"
  elif grep -qa "Raspberry Pi" "$model" 2>/dev/null; then
    echo "pi pi"
  else
    echo "generic gimbal"
  fi
}

# The unit's SupplementaryGroups, read from the template so the user is put in exactly the groups
# the service asks for (systemd refuses to start a unit naming a group that does not exist).
service_groups() {
  sed -n 's/^SupplementaryGroups=//p' "$here/edge-track.service.in"
}

main() {
  local config=/etc/edge-track/device.yaml user=edge-track prefix=/opt/edge-track
  while [ $# -gt 0 ]; do
    case "$1" in
      --config) config="$2"; shift 2 ;;
      --user) user="$2"; shift 2 ;;
      --prefix) prefix="$2"; shift 2 ;;
      *) echo "unknown option $1" >&2; exit 2 ;;
    esac
  done
  [ "$(id -u)" -eq 0 ] || { echo "run as root (sudo)" >&2; exit 2; }

  local platform extras
  read -r platform extras < <(detect_platform)
  case "$platform" in
    jetson) apt-get install -y python3-venv python3-libnvinfer python3-opencv ;;
    pi) apt-get install -y python3-venv python3-picamera2 python3-lgpio ;;
    *) apt-get install -y python3-venv ;;
  esac
  echo "platform: $platform"

  id -u "$user" >/dev/null 2>&1 || useradd --system --home /var/lib/edge-track --shell /usr/sbin/nologin "$user"
  local groups group
  groups="$(service_groups)"
  for group in $groups; do
    getent group "$group" >/dev/null || groupadd --system "$group"
  done
  usermod -aG "${groups// /,}" "$user"

  # System site packages: TensorRT (Jetson), picamera2 and lgpio (Pi) come from apt.
  python3 -m venv --system-site-packages "$prefix"
  "$prefix/bin/pip" install --upgrade pip
  "$prefix/bin/pip" install "$repo[$extras]"

  install -d -m 0755 "$(dirname "$config")"
  if [ ! -f "$config" ]; then
    "$prefix/bin/edge-track" config show > "$config"
    echo "wrote default config $config: edit camera, model and outputs"
  fi
  "$prefix/bin/edge-track" config check "$config"

  install -m 0644 "$here/99-edge-track.rules" /etc/udev/rules.d/99-edge-track.rules
  udevadm control --reload-rules && udevadm trigger || true

  sed -e "s|@EXEC@|$prefix/bin/edge-track|" -e "s|@CONFIG@|$config|" -e "s|@USER@|$user|g" \
    "$here/edge-track.service.in" > /etc/systemd/system/edge-track.service
  systemd-analyze verify /etc/systemd/system/edge-track.service
  systemctl daemon-reload
  systemctl enable --now edge-track.service
  echo "installed: journalctl -u edge-track -f"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
