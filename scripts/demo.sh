#!/usr/bin/env bash
# The main job: installs the build dependencies if missing, builds nllk, and scores the embedded synthetic batch.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
exec build/nllk-score demo
