#!/usr/bin/env bash
# Debian's Chromium and its WebDriver, for the console's browser tests (headless).
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi
# shellcheck source=../../../deploy/lib/service.sh
. "$(cd "$(dirname "$0")" && pwd)/../../../deploy/lib/service.sh"
apt_install chromium chromium-driver
