"""``edge-track trax``: serve a tracker over the TraX protocol, so the VOT toolkit (or any TraX
client) can run it: one rectangle, images as file paths, one session per process.

The channel is the process's standard input and output (or the socket the client names in
TRAX_SOCKET, which libtrax reads itself): nothing else may write to stdout while a session runs,
so progress and logs go to stderr. Bad input from the client (no image, an unreadable one, an
empty or non-rectangular region) ends the session with a TraX quit message that says why, and
exit status 2; never a traceback.
"""

from __future__ import annotations

import math
import os
import sys

from edge.cli.common import add_model_option, add_tracker_overrides, tracker_overrides
from edge.errors import ConfigError, EdgeTrackError

TRACKER_NAME = "edge-track"


class ClientError(EdgeTrackError):
    """Input from the TraX client that cannot be tracked: the session ends, saying why."""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "trax", help="serve a tracker over TraX (the VOT toolkit's protocol) on stdin/stdout",
        description="Serve a tracker over the TraX protocol for the VOT toolkit: name "
                    "'command = edge-track trax' in a workspace's trackers.ini (protocol = trax). "
                    "Regions are rectangles, images file paths. Needs the vot extra (pip install "
                    "'edge-track[vot]').")
    add_model_option(p, "tracker to serve")
    add_tracker_overrides(p)
    p.add_argument("--log", metavar="PATH", help="write libtrax's protocol log to PATH (default: none)")
    p.set_defaults(func=run)


def _load_trax():
    try:
        import trax  # noqa: F401  (vot-trax's module)
    except ImportError:
        raise ConfigError("edge-track trax needs the vot-trax package: pip install 'edge-track[vot]'") from None
    except OSError as exc:   # the wheel's libtrax.so cannot be loaded on this platform
        raise ConfigError(f"vot-trax is installed but its library does not load: {exc}") from None


def open_served_tracker(args):
    """The tracker the session serves (the one place the CLI opens it), in the device's per-frame
    step, so the toolkit scores what a device and ``edge-track eval`` do."""
    from edge.build import open_named_tracker
    from edge.trackers.lost_search import LostSearch

    return LostSearch(open_named_tracker(args.model, threads=args.threads, **tracker_overrides(args))[0])


def read_image(images) -> object:
    """The request's colour image as RGB (H, W, 3) uint8, or ClientError."""
    from trax import FileImage

    from edge.camera.folder import read_rgb
    from edge.errors import SourceError

    image = (images or {}).get("color")
    if image is None:
        raise ClientError("the request has no colour image")
    if not isinstance(image, FileImage):   # vot-trax: Image.type is a method, Region.type a property
        raise ClientError(f"images must be file paths, got {type(image).__name__}")
    path = image.path()
    try:
        return read_rgb(path)
    except SourceError:
        raise ClientError(f"cannot read image {path!r}") from None


def read_region(objects) -> tuple[float, float, float, float]:
    """The one object's rectangle as (x, y, w, h) pixels, or ClientError."""
    from trax import Rectangle

    if not objects:
        raise ClientError("the initialize request has no region")
    if len(objects) > 1:
        raise ClientError(f"one object per session, got {len(objects)}")
    region = objects[0][0]
    if not isinstance(region, Rectangle):
        raise ClientError(f"the region must be a rectangle, got {type(region).__name__}")
    box = tuple(float(v) for v in region.bounds())
    if not all(math.isfinite(v) for v in box) or box[2] <= 0 or box[3] <= 0:
        raise ClientError(f"the region is empty: {', '.join(f'{v:g}' for v in box)}")
    return box


def serve(server, tracker) -> int:
    """Answer requests until the client quits; the number of frames tracked."""
    from trax import Rectangle, TraxStatus

    frames, started = 0, False
    while True:
        request = server.wait()
        if request.type == TraxStatus.QUIT:
            return frames
        if request.type == TraxStatus.INITIALIZE:
            image, box = read_image(request.image), read_region(request.objects)
            try:
                result = tracker.init(image, box)
            except ConfigError as exc:   # a box outside the image
                raise ClientError(str(exc)) from None
            started = True
        elif request.type == TraxStatus.FRAME:
            if not started:
                raise ClientError("a frame came before any initialize request")
            result = tracker.update(read_image(request.image))
            frames += 1
        else:
            raise ClientError(f"unexpected request {request.type!r}")
        x, y, w, h = result.box
        server.status([(Rectangle.create(x, y, w, h), {"confidence": f"{result.score:.5f}"})])


def run(args) -> int:
    _load_trax()
    if sys.stdin.isatty() and not any(k in os.environ for k in ("TRAX_SOCKET", "TRAX_IN")):
        # libtrax would wait for a client's first line for ever
        raise ConfigError("edge-track trax talks TraX on stdin/stdout: a TraX client (the VOT toolkit) starts it, "
                          "not a terminal (see docs/vot-toolkit.md)")
    from trax import Image, Region, Server, TraxException

    tracker = open_served_tracker(args)   # before the handshake: a bad --model is our one line, not a TraX error
    try:
        server = Server([Region.RECTANGLE], [Image.PATH], ["color"], tracker_name=TRACKER_NAME,
                        tracker_description=tracker.info.label, tracker_family="edge-track",
                        log=args.log or False)
    except TraxException as exc:
        raise ConfigError(f"no TraX client on this process's stdin/stdout or TRAX_SOCKET: {exc}") from None
    try:
        frames = serve(server, tracker)
    except (ClientError, TraxException) as exc:
        reason = " ".join(str(exc).split())
        try:
            server.quit(reason=reason)
        except TraxException:
            pass   # the client is gone: nobody to tell
        raise ClientError(f"TraX session ended: {reason}") from None
    server.quit()
    print(f"TraX session done: {frames} frames tracked", file=sys.stderr)
    return 0
