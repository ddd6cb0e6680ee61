#!/usr/bin/env bash
# Install the data-preparation tools: MMseqs2 (chain clustering at 40% identity, `harness data msa`).
# Idempotent: does nothing when `mmseqs` is already on PATH. Debian package `mmseqs2`.
# Without it preparation still works: clusters fall back to exact sequences, recorded in the cache manifest.
set -euo pipefail
if command -v mmseqs >/dev/null 2>&1; then
    exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmseqs2 >/dev/null
else
    echo "mmseqs2 not installed and apt-get not usable here; clusters will be exact-sequence" >&2
fi
