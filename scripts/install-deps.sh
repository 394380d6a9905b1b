#!/usr/bin/env bash
# Installs what wasmhls needs on Debian 12, skipping what is already there:
# FFmpeg 5.1 development libraries (go-astiav v0.16.0), the ffmpeg CLI (tests
# and benchmarks only), redis-server (tests), wabt (the WAT example plugin),
# chromium + node (the hls.js browser test), wrk and nginx (benchmarks), and
# the Go modules. Run as root or with sudo available.
set -euo pipefail

pkgs=(pkg-config gcc libavcodec-dev libavformat-dev libavfilter-dev libavutil-dev
      libswscale-dev libswresample-dev libavdevice-dev ffmpeg redis-server wabt)
case "${1:-}" in
  --test) pkgs+=(chromium nodejs npm) ;;
  --bench) pkgs+=(wrk nginx-light) ;;
  --all) pkgs+=(chromium nodejs npm wrk nginx-light) ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  # node may come from another repository under the same command name.
  if [[ $p == nodejs || $p == npm ]] && command -v "${p%js}" >/dev/null 2>&1; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  SUDO=; [[ $(id -u) == 0 ]] || SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v go >/dev/null 2>&1; then
  echo "install-deps: Go 1.26 is required (https://go.dev/dl/); not found on PATH" >&2
  exit 1
fi
go mod download
