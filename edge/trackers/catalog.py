"""The trackers bundled with the package, the numbers that measured them, and the default rule.

``edge/data/trackers.json`` lists each bundled tracker (name, family, precision, files, licence)
with the results of the run that measured it: the validation split's band mean (two starts),
the dev AUC, how its LOST state sat against the truth, and its frame time over OpenCV NanoTrack's.
The default is not picked by hand: it is the bundled tracker with the best validation band mean
among those whose LOST state works (``LOST_ON_FAILED_MIN``, ``LOST_ON_TRACKED_MAX``). A new model
that wins the split becomes the default by adding its entry and numbers, with no code change.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from edge.errors import ConfigError

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")
CATALOG = os.path.join(DATA, "trackers.json")

# A LOST state that works: it marks at least this share of the frames where the tracker has failed
# (IoU < 0.1) and at most this share of the frames where it tracks (IoU > 0.5).
LOST_ON_FAILED_MIN = 0.40
LOST_ON_TRACKED_MAX = 0.01


@dataclass(frozen=True)
class Entry:
    name: str                 # what --model and model.path take
    family: str               # nanotrack, mixformerv2, vittrack
    precision: str            # fp32, int8, fp16
    path: str                 # the file or folder the runtime opens
    files: tuple[str, ...]    # every file it needs, relative to DATA
    licence: str
    description: str
    results: dict = field(default_factory=dict)

    @property
    def lost_state_works(self) -> bool:
        on_failed, on_tracked = self.results.get("lost_on_failed"), self.results.get("lost_on_tracked")
        return (on_failed is not None and on_tracked is not None
                and on_failed >= LOST_ON_FAILED_MIN and on_tracked <= LOST_ON_TRACKED_MAX)

    @property
    def installed(self) -> bool:
        return all(os.path.isfile(os.path.join(DATA, f)) for f in self.files)


@dataclass(frozen=True)
class Catalog:
    entries: tuple[Entry, ...]
    measured: dict            # how, where and when the results were measured
    peers: tuple[dict, ...]   # trackers measured in the same run that are not bundled

    def get(self, name: str) -> Entry | None:
        """The entry called ``name`` (case does not matter: NanoTrack-V3 is nanotrack-v3)."""
        return next((e for e in self.entries if e.name.lower() == name.lower()), None)

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    def default(self) -> Entry | None:
        """The installed tracker with the best validation band mean among those whose LOST state
        works; with no such numbers, the first installed entry."""
        installed = [e for e in self.entries if e.installed]
        eligible = [e for e in installed if e.lost_state_works and e.results.get("validation_band") is not None]
        if eligible:
            return max(eligible, key=lambda e: e.results["validation_band"])
        return installed[0] if installed else None


def load_catalog(path: str = CATALOG) -> Catalog:
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
        entries = tuple(
            Entry(name=e["name"], family=e["family"], precision=e["precision"],
                  path=os.path.join(DATA, e["path"]), files=tuple(e["files"]), licence=e["licence"],
                  description=e["description"], results=dict(e.get("results", {})))
            for e in raw["trackers"])
        return Catalog(entries, dict(raw.get("measured", {})), tuple(raw.get("peers", ())))
    except FileNotFoundError:
        return Catalog((), {}, ())
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"the package's tracker catalog {path} is damaged ({type(exc).__name__}: {exc}); "
                          "reinstall edge-track") from None


def resolve(model: str | None, catalog: Catalog | None = None, option: str = "--model") -> tuple[str, Entry | None]:
    """(path, catalog entry or None) for ``model``: a bundled tracker's name, a path, or None for
    the default. One line naming what ``edge-track models`` lists when it is neither."""
    catalog = catalog or load_catalog()
    if not model:
        entry = catalog.default()
        if entry is None:
            raise ConfigError("this install has no bundled tracker (edge/data/): give --model PATH")
        return entry.path, entry
    entry = catalog.get(model) if not os.path.exists(model) else None
    if entry is not None:
        if not entry.installed:
            raise ConfigError(f"bundled tracker '{model}' is not in this install (its files are missing)")
        return entry.path, entry
    if os.path.exists(model):
        return model, next((e for e in catalog.entries if os.path.realpath(e.path) == os.path.realpath(model)), None)
    looks_like_path = os.sep in model or model.endswith((".onnx", ".tflite", ".engine", ".plan"))
    what = "no such file or folder" if looks_like_path else "not a bundled tracker, file or folder"
    raise ConfigError(f"{option} {model}: {what} (edge-track models lists: {', '.join(catalog.names) or 'none'})"
                      .lstrip())
