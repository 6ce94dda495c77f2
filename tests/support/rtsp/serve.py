#!/usr/bin/python3
"""A real RTSP server for tests and demos: GStreamer's RTSP server serving an H.264 MP4.

Run with the system Python (python3-gi, gir1.2-gst-rtsp-server-1.0 and the good/bad
plugin sets from Debian), not a virtualenv:
    /usr/bin/python3 tests/support/rtsp/serve.py --port 8554 --path /cam1 --file clip.mp4
The clip restarts from the beginning for each new client session.
"""

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8554)
    parser.add_argument("--path", default="/cam1")
    parser.add_argument("--file", required=True, help="H.264 MP4 to serve")
    parser.add_argument("--user", help="require this user (RTSP basic auth)")
    parser.add_argument("--password")
    args = parser.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f'( filesrc location="{args.file}" ! qtdemux ! h264parse ! '
        "rtph264pay name=pay0 pt=96 config-interval=1 )")
    factory.set_shared(True)
    if args.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", args.user)
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password or ""), token)
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_permission_for_role(args.user, "media.factory.access", True)
        permissions.add_permission_for_role(args.user, "media.factory.construct", True)
        factory.set_permissions(permissions)
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        return 1
    loop = GLib.MainLoop()
    signal.signal(signal.SIGTERM, lambda *_: loop.quit())
    print(f"rtsp://127.0.0.1:{args.port}{args.path} serving {args.file}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
