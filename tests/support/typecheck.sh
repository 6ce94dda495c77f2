#!/usr/bin/env bash
# Type-check the package as it imports (crowdwatch.*): the source folders map onto the
# namespace through setuptools' package-dir, which mypy cannot follow, so check a tree of
# links laid out like the installed package. Settings live in pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/../.."
tree="$(mktemp -d)"
trap 'rm -rf "$tree"' EXIT
mkdir "$tree/crowdwatch"
for item in core/*; do
  ln -s "$PWD/$item" "$tree/crowdwatch/$(basename "$item")"
done
for folder in ingest detectors streams dashboards tools cli; do
  ln -s "$PWD/$folder" "$tree/crowdwatch/$folder"
done
cd "$tree"
"${MYPY:-mypy}" --config-file "$OLDPWD/pyproject.toml" -p crowdwatch
