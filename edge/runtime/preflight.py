"""Every check ``run`` makes before READY=1, in one place that ``config check`` runs too, so the two
refuse the same configs with the same line. Nothing here creates a file or opens a device.

Checked: the track log and recording paths, that each enabled output's library is installed, the
source (a file or folder is opened and its first frame read), ``tracking.init`` and the calibration
against that frame's size, and the model, loaded and warmed up as ``run`` does. Left to ``run``, which
waits for them: a live camera (it may appear after boot), serial ports and MAVLink links (an adapter
may be plugged in later), the web console's port (the running service holds it).
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edge.build import camera_model_for, tracker_for_config
from edge.camera import is_live, open_source
from edge.errors import ConfigError, SourceError
from edge.io.progress import reporting_while
from edge.io.video_out import check_video_path
from edge.outputs import check_outputs
from edge.runtime.telemetry import check_track_log_path
from edge.target import fit_target, initial_request
from edge.trackers.contract import Tracker

if TYPE_CHECKING:
    from edge.config import CameraConfig, DeviceConfig
    from edge.control.camera_model import CameraModel
    from edge.target import TargetRequest

log = logging.getLogger("edge.runtime")


def _still_loading(what: str, waited_s: float) -> None:
    log.info("%s: %.0f s so far", what, waited_s)


@dataclass
class Checked:
    """What the checks built, for ``run`` to go on with."""

    tracker: Tracker                      # loaded as run loads it, and warmed up
    initial: TargetRequest | None         # tracking.init as a request
    live: bool                            # a camera, waited for by run; not opened here
    frame_size: tuple[int, int] | None    # (width, height) of a file or folder source
    camera_model: CameraModel | None      # for that size (None for a live camera)


def preflight(cfg: DeviceConfig, checkpoint=lambda: None) -> Checked:
    """Raise the EdgeTrackError ``run`` would raise before READY=1, or return what was built.
    ``checkpoint()`` is called after each step (run's stop-signal check). Quick checks first."""
    check_telemetry_paths(cfg.telemetry)
    check_outputs(cfg.outputs)
    check_web(cfg.web)
    checkpoint()
    initial = initial_request(cfg.tracking.init)
    live = is_live(str(cfg.camera.source))
    size = camera_model = None
    if not live:
        # A file, folder or URL that does not open is a mistake in the config: say so and stop.
        size = first_frame_size(lambda: open_camera(cfg.camera), cfg.camera.source)
        camera_model = check_stream(cfg.camera, initial, *size)
        checkpoint()
    # A large model on a slow card can take a while: say so every 5 s rather than look hung.
    with reporting_while(f"loading the model {cfg.model.path or '(the default tracker)'}", _still_loading):
        tracker = tracker_for_config(cfg)
        checkpoint()
        warm_up(tracker)
    checkpoint()
    return Checked(tracker, initial, live, size, camera_model)


def check_telemetry_paths(tel) -> None:
    if tel.track_log:
        check_track_log_path(tel.track_log)
    if tel.record:
        try:
            check_video_path(tel.record)
        except ValueError as exc:
            raise ConfigError(f"telemetry.record: {exc}") from None


_HOST_NAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}"
                        r"[A-Za-z0-9])?)*\.?")


def check_web(web) -> None:
    """What ``run`` would refuse about the console, short of binding its port (the running service
    holds it): an address that is none, and a token file that is a link or no file."""
    if not web.enabled:
        return
    bind = web.bind
    try:
        ipaddress.ip_address(bind)
    except ValueError:
        if bind not in ("", "localhost") and not _HOST_NAME.fullmatch(bind):
            raise ConfigError(f"web.bind {bind!r}: not an IP address or host name "
                              "(127.0.0.1: this machine only; 0.0.0.0: every address)") from None
        if bind:
            try:
                socket.getaddrinfo(bind, web.port, type=socket.SOCK_STREAM)
            except (OSError, UnicodeError) as exc:
                raise ConfigError(f"web.bind {bind!r}: no such address here ({exc})") from None
    from edge.web.cross_site import LOOPBACK_NAMES
    from edge.web.token_file import check_token_file, default_state_dir

    if bind not in LOOPBACK_NAMES:   # where the token is needed: the file run reads or writes
        check_token_file(web.state_dir or default_state_dir())


def open_camera(cam: CameraConfig):
    return open_source(cam.source, width=cam.width, height=cam.height, fps=cam.fps)


def first_frame_size(opener, name) -> tuple[int, int]:
    """(width, height) of a file or folder source's first frame; it is closed again."""
    source = opener()
    try:
        first = next(iter(source), None)
    finally:
        source.close()
    if first is None:
        raise SourceError(f"no frames in {name}")
    return first.image.shape[1], first.image.shape[0]


def check_stream(cam: CameraConfig, initial, width: int, height: int) -> CameraModel:
    """The camera model for a width x height stream, once ``tracking.init`` and the calibration
    were found to fit it (ConfigError otherwise)."""
    check_initial_target(initial, width, height)
    return camera_model_for(cam, width, height)


def check_initial_target(initial, width: int, height: int) -> None:
    """ConfigError now, before READY=1, for a ``tracking.init`` the loop would refuse on this stream."""
    if initial is None:
        return
    try:
        fit_target(initial.box_in(width, height), width, height)
    except ConfigError as exc:
        raise ConfigError(f"tracking.init: {exc}") from None


def warm_up(tracker: Tracker) -> None:
    """One init + update on a blank frame, so the first real frame is not the slow one."""
    import numpy as np

    meta = tracker.meta
    side = max(meta.search_size, 64) * 2
    blank = np.zeros((side, side, 3), np.uint8)
    tracker.init(blank, (side / 4, side / 4, side / 4, side / 4))
    tracker.update(blank)
