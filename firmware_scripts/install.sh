#!/usr/bin/env bash
# Install edge-track as a service on Raspberry Pi OS or NVIDIA JetPack.
#   sudo ./firmware_scripts/install.sh [--config /etc/edge-track/device.yaml]
# A dedicated user, a venv in /opt/edge-track (with system site packages on Jetson for TensorRT
# and the GStreamer-enabled OpenCV, and on the Pi for picamera2), the udev rules, the unit.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
config=/etc/edge-track/device.yaml
user=edge-track
prefix=/opt/edge-track
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config="$2"; shift 2 ;;
    --user) user="$2"; shift 2 ;;
    --prefix) prefix="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "run as root (sudo)" >&2; exit 2; }

extras="gimbal"
if [ -f /etc/nv_tegra_release ]; then
  platform=jetson; extras="gimbal,jetson"
  apt-get install -y python3-venv python3-libnvinfer python3-opencv
elif grep -q "Raspberry Pi" /proc/device-tree/model 2>/dev/null; then
  platform=pi; extras="gimbal,tflite"
  apt-get install -y python3-venv python3-picamera2 python3-lgpio
else
  platform=generic
  apt-get install -y python3-venv
fi
echo "platform: $platform"

id -u "$user" >/dev/null 2>&1 || useradd --system --home /var/lib/edge-track --shell /usr/sbin/nologin "$user"
getent group gpio >/dev/null || groupadd --system gpio
usermod -aG video,dialout,gpio "$user"

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
