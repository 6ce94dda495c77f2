#!/usr/bin/env bash
# Debian packages for the test RTSP server (GStreamer through the system Python).
set -euo pipefail
if /usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0')" 2>/dev/null \
   && /usr/bin/python3 -c "import gi; gi.require_version('Gst', '1.0'); from gi.repository import Gst; Gst.init(None); assert Gst.ElementFactory.find('rtph264pay') and Gst.ElementFactory.find('h264parse') and Gst.ElementFactory.find('qtdemux')" 2>/dev/null; then
  exit 0
fi
# shellcheck source=../../../deploy/lib/service.sh
. "$(cd "$(dirname "$0")" && pwd)/../../../deploy/lib/service.sh"
apt_install python3-gi gir1.2-gst-rtsp-server-1.0 \
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
