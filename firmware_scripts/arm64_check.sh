#!/usr/bin/env bash
# Install, track and score edge-track on aarch64 without a device: a Debian bookworm arm64 root
# filesystem under qemu-user runs the real aarch64 wheels (onnxruntime, LiteRT, OpenCV, numpy),
# so its INT8 kernels are the Pi's, only ~100x slower.
#
#   sudo ./firmware_scripts/arm64_check.sh [--rootfs DIR] [--model M.onnx] [--tflite M.tflite]
#        [--sequences DIR] [--tests "tests/test_a.py ..."] [--layers OUTDIR] [--noise-runs K] [--check]
#
# Run it after a model or engine change (new bundled model, new quantisation, onnxruntime or
# LiteRT upgrade). Not part of CI: it takes many minutes. The last line printed is one JSON object:
#   {"engines": {"<engine>": {"auc_arm64": x, "auc_host": y, "auc_host_noise": [lo, hi]}},
#    "tests": {"passed": n, "failed": m}}
# auc_host_noise: the host's AUC range over K runs with +-0.001 grey levels of input noise (default
# 8): a clip's AUC depends on rounding, and an aarch64 AUC inside that range is rounding too.
set -euo pipefail

die() { echo "arm64_check: $*" >&2; exit 2; }

# Parameter expansion, not dirname: the prerequisite checks must work with a bare PATH.
case "$0" in */*) here="${0%/*}" ;; *) here=. ;; esac
here="$(cd "$here" && pwd)"
repo="${here%/*}"
rootfs=/var/cache/edge-track/arm64-rootfs
model=""
tflite=""
sequences=""
layers=""
check_only=0
# Torch-free tests that finish in minutes under emulation; the rest of the suite is x86's job.
tests="tests/edge/evaluation/test_metrics.py tests/edge/trackers/test_crop.py tests/edge/trackers/test_tracker.py tests/edge/bench/test_bench_profile.py"
host_python=""
mirror=""
noise_runs=8

while [ $# -gt 0 ]; do
  case "$1" in
    --rootfs|--model|--tflite|--sequences|--tests|--layers|--host-python|--mirror|--noise-runs)
      [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value"
      case "$1" in
        --rootfs) rootfs="$2" ;;
        --model) model="$2" ;;
        --tflite) tflite="$2" ;;
        --sequences) sequences="$2" ;;
        --tests) tests="$2" ;;
        --layers) layers="$2" ;;
        --host-python) host_python="$2" ;;
        --mirror) mirror="$2" ;;
        --noise-runs) case "$2" in *[!0-9]*) die "--noise-runs needs a whole number, got $2" ;; esac
                      noise_runs="$2" ;;
      esac
      shift 2 ;;
    --check) check_only=1; shift ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

# --- prerequisites: each missing one is named in one line -------------------------------------
[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot and mounts): run it with sudo"
missing=""
for tool in debootstrap chroot mount umount tar; do
  command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
[ -e /usr/bin/qemu-aarch64-static ] || [ -e /usr/libexec/qemu-binfmt/aarch64-binfmt-P ] \
  || command -v qemu-aarch64-static >/dev/null 2>&1 || missing="$missing qemu-aarch64-static"
if [ -n "$missing" ] && command -v apt-get >/dev/null 2>&1; then
  echo "arm64_check: installing qemu-user-static debootstrap binfmt-support" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    qemu-user-static debootstrap binfmt-support) >&2 || true
  missing=""
  for tool in debootstrap chroot mount umount tar qemu-aarch64-static; do
    command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
  done
fi
[ -z "$missing" ] || die "missing:$missing (apt-get install qemu-user-static debootstrap binfmt-support)"
binfmt=/proc/sys/fs/binfmt_misc
if [ ! -e "$binfmt/status" ]; then
  mount binfmt_misc -t binfmt_misc "$binfmt" 2>/dev/null \
    || die "no binfmt_misc: the kernel or container does not allow 'mount -t binfmt_misc' (a privileged container or a VM does)"
fi
if [ ! -e "$binfmt/qemu-aarch64" ]; then
  command -v update-binfmts >/dev/null 2>&1 && update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
fi
grep -q enabled "$binfmt/qemu-aarch64" 2>/dev/null \
  || die "no qemu-aarch64 handler in binfmt_misc (apt-get install qemu-user-static binfmt-support; update-binfmts --enable qemu-aarch64)"

model="${model:-$repo/edge/data/model/edge-track-default.onnx}"
[ -f "$model" ] || die "model not found: $model"
model="$(cd "$(dirname "$model")" && pwd)/$(basename "$model")"
if [ -z "$tflite" ] && [ -f "${model%.onnx}.tflite" ]; then tflite="${model%.onnx}.tflite"; fi
[ -z "$tflite" ] || [ -f "$tflite" ] || die "tflite model not found: $tflite"
sequences="${sequences:-$repo/edge/data/sample}"
[ -d "$sequences" ] || die "sequences folder not found: $sequences"
if [ -z "$host_python" ]; then
  if [ -x "$repo/.venv/bin/python" ]; then host_python="$repo/.venv/bin/python"; else host_python=python3; fi
fi
"$host_python" -c "import edge, onnxruntime" 2>/dev/null \
  || die "host python $host_python cannot import edge and onnxruntime (give --host-python)"
if [ -z "$mirror" ]; then
  # The mirror this machine's apt already uses (deb822 or one-line sources), so a proxy or
  # local mirror that works for apt works here too.
  mirror=$(grep -hs -E '^(URIs:|deb )' /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list \
    | grep -v security | sed -E 's/^URIs: *//; s/^deb (\[[^]]*\] )?//' | awk '{print $1; exit}' || true)
  mirror="${mirror:-http://deb.debian.org/debian}"
fi
if [ "$check_only" = 1 ]; then
  echo "arm64_check: ready (rootfs $rootfs, model $model${tflite:+, tflite $tflite})"
  exit 0
fi

# --- mounts are undone on every exit path ---------------------------------------------------
mounted=()
cleanup() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    umount "${mounted[$i]}" 2>/dev/null || umount -l "${mounted[$i]}" 2>/dev/null || true
  done
  mounted=()
  # The host's result folder (mktemp below): a failed step exits before the rm at the end.
  if [ -n "${host_out:-}" ] && [ -d "$host_out" ]; then rm -rf "$host_out"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
bind() {  # bind SRC DEST [ro]
  mkdir -p "$2"
  mountpoint -q "$2" && umount -l "$2"  # left over from a killed run
  mount --bind "$1" "$2"
  mounted+=("$2")
  [ "${3:-}" != ro ] || mount -o remount,ro,bind "$2"
}

# --- the root filesystem: built once, reused while complete ---------------------------------
if [ -d "$rootfs/debootstrap" ]; then
  # An interrupted debootstrap leaves this folder; start that one over.
  for m in proc sys dev/pts dev; do mountpoint -q "$rootfs/$m" && umount -l "$rootfs/$m"; done
  rm -rf --one-file-system "$rootfs"
fi
if [ ! -x "$rootfs/usr/bin/python3" ]; then
  echo "arm64_check: debootstrap arm64 bookworm into $rootfs from $mirror (about 5 minutes)" >&2
  mkdir -p "$rootfs"
  debootstrap --arch=arm64 --variant=minbase \
    --include=python3,python3-venv,python3-pip,ca-certificates,libgl1,libglib2.0-0 \
    bookworm "$rootfs" "$mirror" >&2
fi

# /proc and /dev, but not the host's /sys: onnxruntime's cpuinfo library, built for ARM, parses
# the x86 host's /sys CPU topology and crashes (measured: SIGSEGV at 'import onnxruntime').
# Without it onnxruntime takes the CPU features from the auxiliary vector (getauxval), which
# qemu fills in for the CPU it emulates: a Cortex-A76, the Raspberry Pi 5's core (NEON, dotprod;
# QEMU_CPU=cortex-a72 for a Pi 4).
mkdir -p "$rootfs/proc" "$rootfs/dev"
mountpoint -q "$rootfs/proc" && umount -l "$rootfs/proc"
mount -t proc proc "$rootfs/proc"; mounted+=("$rootfs/proc")
bind /dev "$rootfs/dev"
bind /dev/pts "$rootfs/dev/pts"

# pip inside resolves as pip on the host does: same CA bundle, pip config and PIP_* settings.
cp -L /etc/resolv.conf "$rootfs/etc/resolv.conf" 2>/dev/null || true
for ca in /etc/ssl/certs/ca-certificates.crt "${PIP_CERT:-}" "${REQUESTS_CA_BUNDLE:-}" "${SSL_CERT_FILE:-}"; do
  [ -n "$ca" ] && [ -f "$ca" ] || continue
  mkdir -p "$rootfs$(dirname "$ca")"; cp -L "$ca" "$rootfs$ca"
done
[ ! -f /etc/pip.conf ] || cp -L /etc/pip.conf "$rootfs/etc/pip.conf"
if [ -d /etc/xdg/pip ]; then rm -rf "$rootfs/etc/xdg/pip"; mkdir -p "$rootfs/etc/xdg"; cp -rL /etc/xdg/pip "$rootfs/etc/xdg/pip"; fi
if [ -f "$HOME/.config/pip/pip.conf" ]; then mkdir -p "$rootfs/root/.config/pip"; cp -L "$HOME/.config/pip/pip.conf" "$rootfs/root/.config/pip/"; fi
pip_env=()
while IFS='=' read -r name value; do
  case "$name" in PIP_*|HTTP_PROXY|HTTPS_PROXY|http_proxy|https_proxy|NO_PROXY|no_proxy) pip_env+=("$name=$value") ;; esac
done < <(env)

# A fresh read-only copy of the project as a Pi user would clone it (no venv, no git history).
work=/opt/edge-track-check
rm -rf "$rootfs$work/src" "$rootfs$work/data" "$rootfs$work/out"
mkdir -p "$rootfs$work/src" "$rootfs$work/data/sequences" "$rootfs$work/out"
tar -C "$repo" --exclude=./.venv --exclude=./.git --exclude=./runs --exclude='*.egg-info' \
  --exclude='__pycache__' --exclude=./.pytest_cache -cf - . | tar -C "$rootfs$work/src" -xf -
cp -a "$sequences"/. "$rootfs$work/data/sequences/"
# Same file names as on the host: the contract graph's metadata names its step graph.
mkdir -p "$rootfs$work/data/model"
cp "$model" "$rootfs$work/data/model/"
step="${model%.onnx}.step.onnx"
[ ! -f "$step" ] || cp "$step" "$rootfs$work/data/model/"
[ -z "$tflite" ] || cp "$tflite" "$rootfs$work/data/model/"
host_out=$(mktemp -d)
if [ -n "$layers" ]; then
  mkdir -p "$layers"
  echo "arm64_check: per-layer probe models from $model" >&2
  PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" "$host_python" -m tools.layer_probe build --model "$model" --sequences "$sequences" --out "$layers/probe" >&2
  cp -a "$layers/probe" "$rootfs$work/data/probe"
fi

cat > "$rootfs$work/inside.sh" <<'INSIDE'
#!/bin/bash
# Runs inside the arm64 root filesystem: the Pi user's install, then the same eval and tests.
set -uo pipefail
work=/opt/edge-track-check
cd "$work"
[ -x venv/bin/python ] || python3 -m venv venv >&2 || exit 3
py=venv/bin/python
$py -m pip install -q "$work/src" >&2 || { echo "pip install of the project failed" >&2; exit 3; }
# The pi extra, one requirement at a time: a wheel that does not exist for aarch64 is reported,
# not built from source on the device.
$py - <<'EOF' > out/pi_extra.txt
import tomllib
print("\n".join(tomllib.load(open("/opt/edge-track-check/src/pyproject.toml", "rb"))["project"]["optional-dependencies"]["pi"]))
EOF
: > out/pi_missing.txt
while read -r req; do
  [ -n "$req" ] || continue
  $py -m pip install -q --only-binary=:all: "$req" >&2 2>/dev/null || echo "$req" >> out/pi_missing.txt
done < out/pi_extra.txt
$py -m pip install -q --only-binary=:all: "pytest>=8" "hypothesis>=6" >&2 || true
$py -c "import platform, onnxruntime, numpy, cv2; print(platform.machine(), 'onnxruntime', onnxruntime.__version__, 'numpy', numpy.__version__, 'opencv', cv2.__version__)" > out/versions.txt
$py -c "import ai_edge_litert; print('ai-edge-litert', getattr(ai_edge_litert, '__version__', 'installed'))" >> out/versions.txt 2>/dev/null || true
cat out/versions.txt >&2
venv/bin/edge-track eval --sequences data/sequences --model "data/model/$MODEL_NAME" --json out/onnxruntime-int8.json >&2 \
  || echo "onnxruntime eval failed" >&2
if [ -n "$TFLITE_NAME" ]; then
  venv/bin/edge-track eval --sequences data/sequences --model "data/model/$TFLITE_NAME" --json out/tflite.json >&2 \
    || echo "tflite eval failed" >&2
fi
if [ -d data/probe ]; then
  PYTHONPATH=src $py -m tools.layer_probe dump --probe data/probe --out out/layers_arm64.npz >&2 || echo "layer dump failed" >&2
fi
[ -n "$TESTS" ] || exit 0   # an empty list would run the whole suite (hours under emulation)
cd src
# shellcheck disable=SC2086
../venv/bin/python -m pytest -q -p no:cacheprovider -m "not slow" --junitxml="$work/out/junit.xml" $TESTS >&2
exit 0
INSIDE

echo "arm64_check: installing and running inside $rootfs (emulated; many minutes)" >&2
QEMU_CPU="${QEMU_CPU:-cortex-a76}" chroot "$rootfs" /usr/bin/env -i HOME=/root LANG=C.UTF-8 PATH=/usr/local/bin:/usr/bin:/bin \
  TESTS="$tests" MODEL_NAME="$(basename "$model")" TFLITE_NAME="${tflite:+$(basename "$tflite")}" "${pip_env[@]}" /bin/bash "$work/inside.sh" \
  || die "the arm64 install failed (see above)"

echo "arm64_check: the same on the host ($host_python)" >&2
"$host_python" -m edge.cli.main eval --sequences "$sequences" --model "$model" --noise-runs "$noise_runs" \
  --json "$host_out/onnxruntime-int8.json" >&2
if [ -n "$tflite" ]; then
  "$host_python" -m edge.cli.main eval --sequences "$sequences" --model "$tflite" --noise-runs "$noise_runs" \
    --json "$host_out/tflite.json" >&2 \
    || echo "arm64_check: tflite eval failed on the host" >&2
fi
if [ -n "$layers" ]; then
  cp "$rootfs$work/out/layers_arm64.npz" "$layers/" 2>/dev/null || true
  PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" "$host_python" -m tools.layer_probe dump --probe "$layers/probe" --out "$layers/layers_host.npz" >&2
  PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" "$host_python" -m tools.layer_probe compare --probe "$layers/probe" "$layers/layers_host.npz" \
    "$layers/layers_arm64.npz" > "$layers/report.md" || true
  echo "arm64_check: per-layer comparison in $layers/report.md" >&2
fi
cp "$rootfs$work/out"/*.txt "$host_out/" 2>/dev/null || true
if [ -s "$host_out/pi_missing.txt" ]; then
  echo "arm64_check: no aarch64 wheel for: $(tr '\n' ' ' < "$host_out/pi_missing.txt")" >&2
fi

python3 - "$rootfs$work/out" "$host_out" <<'EOF'
import glob, json, os, sys
import xml.etree.ElementTree as ET

arm, host = sys.argv[1], sys.argv[2]
def auc(path):
    try:
        with open(path) as f:
            return round(100 * json.load(f)["mean"]["auc"], 2)
    except (OSError, KeyError, ValueError):
        return None
def band(path):
    try:
        with open(path) as f:
            m = json.load(f)["noise"]["mean"]
        return [round(100 * m["auc_min"], 2), round(100 * m["auc_max"], 2)]
    except (OSError, KeyError, ValueError):
        return None
engines = {}
for path in sorted(glob.glob(os.path.join(host, "*.json")) + glob.glob(os.path.join(arm, "*.json"))):
    name = os.path.basename(path)[:-5]
    if name not in engines:
        engines[name] = {"auc_arm64": auc(os.path.join(arm, name + ".json")),
                         "auc_host": auc(os.path.join(host, name + ".json"))}
        if band(os.path.join(host, name + ".json")) is not None:
            engines[name]["auc_host_noise"] = band(os.path.join(host, name + ".json"))
tests = {"passed": 0, "failed": 0}
try:
    root = ET.parse(os.path.join(arm, "junit.xml")).getroot()
    for suite in root.iter("testsuite"):
        total, skipped = int(suite.get("tests", 0)), int(suite.get("skipped", 0))
        failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        tests["failed"] += failed
        tests["passed"] += total - skipped - failed
        tests["skipped"] = tests.get("skipped", 0) + skipped
except (OSError, ET.ParseError):
    tests["failed"] = None
print(json.dumps({"engines": engines, "tests": tests}))
EOF
rm -rf "$host_out"
