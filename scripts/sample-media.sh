#!/usr/bin/env bash
# Generates a short sample clip into the media directory when it holds no
# media yet, so `make run` has something to play. Uses the ffmpeg CLI (the
# server itself never runs it).
set -euo pipefail
dir=${1:-media}
mkdir -p "$dir"
if find "$dir" -type f \( -name '*.mp4' -o -name '*.mkv' -o -name '*.mov' -o -name '*.ts' -o -name '*.webm' \) | grep -q .; then
  exit 0
fi
echo "sample-media: writing $dir/sample.mp4 (30 s, 1280x720, testsrc2 + sine)"
ffmpeg -v error -y -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
  -t 30 -c:v libx264 -preset veryfast -pix_fmt yuv420p -c:a aac -b:a 128k -shortest "$dir/sample.mp4"
