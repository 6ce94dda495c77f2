#!/usr/bin/env bash
# Type-check the package as it imports (crowdwatch.*): the source folders map onto the
# namespace through setuptools' package-dir, which mypy cannot follow, so check a tree of
# links laid out like the installed package. Settings live in pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/../.."
mypy_bin="${MYPY:-mypy}"
if [[ "$mypy_bin" == */* ]]; then  # a path: make it absolute before leaving this folder
  mypy_bin="$(cd "$(dirname "$mypy_bin")" && pwd)/$(basename "$mypy_bin")"
fi
tree="$(mktemp -d)"
trap 'rm -rf "$tree"' EXIT
mkdir "$tree/crowdwatch"
for item in core/*; do
  ln -s "$PWD/$item" "$tree/crowdwatch/$(basename "$item")"
done
for folder in ingest detectors streams dashboards tools cli console; do
  ln -s "$PWD/$folder" "$tree/crowdwatch/$folder"
done
cd "$tree"
"$mypy_bin" --config-file "$OLDPWD/pyproject.toml" -p crowdwatch
