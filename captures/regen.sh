#!/usr/bin/env bash
# Regenerate the bundled lab captures (root; needs tshark, nftables, iproute2, python3 + cryptography + click).
# Usage: sudo bash captures/regen.sh [NAME...]   (default: all). Each capture: lab up -> capture -> lab down.
# The lab is python -m analyzer.lab until the main CLI exposes it as `mtls-analyzer lab`.
set -euo pipefail
cd "$(dirname "$0")/.."
LAB=(python3 -m analyzer.lab)
trap '"${LAB[@]}" down >/dev/null' EXIT

one() {  # one NAME MODE CAPTURE-ARGS...
  local name=$1 mode=$2; shift 2
  [ "${#WANT[@]}" -eq 0 ] || [[ " ${WANT[*]} " == *" $name "* ]] || return 0
  "${LAB[@]}" up --mode "$mode" >/dev/null
  "${LAB[@]}" capture "$@" -o "captures/$name.pcapng"
  "${LAB[@]}" down >/dev/null
  python3 -m analyzer.lab.verify "captures/$name.pcapng" | tail -n 1
}

WANT=("$@")
one demo-transparent      transparent      --pod voting --seconds 10
one transport-header      transport-header --pod web    --seconds 8
one midconn-transparent   transparent      --pod voting --seconds 6 --scenario midconn
one snaplen96-transparent transparent      --pod web    --seconds 6 --snaplen 96
one midconn-snaplen96-transparent transparent --pod voting --seconds 8 --scenario midconn --snaplen 96
one node-transparent      transparent      --node       --seconds 6
one sll2-transparent      transparent      --pod voting --seconds 6 --sll2
