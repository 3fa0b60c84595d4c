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
import math
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
    measured: dict = field(default_factory=dict)   # the run that measured ``results``: date, cpu

    @property
    def lost_state_works(self) -> bool:
        on_failed, on_tracked = self.results.get("lost_on_failed"), self.results.get("lost_on_tracked")
        return (on_failed is not None and on_tracked is not None
                and on_failed >= LOST_ON_FAILED_MIN and on_tracked <= LOST_ON_TRACKED_MAX)

    @property
    def eligible(self) -> bool:
        """What the default rule can choose: a working LOST state and a validation band to rank by."""
        return self.lost_state_works and self.results.get("validation_band") is not None

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
        eligible = [e for e in installed if e.eligible]
        if eligible:
            return max(eligible, key=lambda e: e.results["validation_band"])
        return installed[0] if installed else None


def _text(value, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    return value


def _results(raw, what: str) -> dict:
    if not isinstance(raw, dict):
        raise ValueError(f"{what} must be an object")
    for key, value in raw.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value)):
            raise ValueError(f"{what}.{key} must be a finite number or null, got {value!r}")
    return dict(raw)


def _entry(raw) -> Entry:
    if not isinstance(raw, dict):
        raise ValueError("a tracker entry must be an object")
    name = _text(raw.get("name"), "name")
    files = raw.get("files")
    if not isinstance(files, list) or not files:
        raise ValueError(f"{name}: files must be a list of file names")
    return Entry(name=name, family=_text(raw.get("family"), f"{name}: family"),
                 precision=_text(raw.get("precision"), f"{name}: precision"),
                 path=os.path.join(DATA, _text(raw.get("path"), f"{name}: path")),
                 files=tuple(_text(f, f"{name}: files[]") for f in files),
                 licence=_text(raw.get("licence"), f"{name}: licence"),
                 description=_text(raw.get("description"), f"{name}: description"),
                 results=_results(raw.get("results", {}), f"{name}: results"),
                 measured=dict(raw.get("measured") or {}))


def load_catalog(path: str = CATALOG) -> Catalog:
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
        if not isinstance(raw, dict) or not isinstance(raw.get("trackers"), list):
            raise ValueError("no list of trackers")
        peers = raw.get("peers", [])
        if not isinstance(peers, list) or not all(isinstance(p, dict) for p in peers):
            raise ValueError("peers must be a list of objects")
        return Catalog(tuple(_entry(e) for e in raw["trackers"]), dict(raw.get("measured") or {}), tuple(peers))
    except FileNotFoundError:
        return Catalog((), {}, ())
    except (OSError, ValueError, RecursionError) as exc:
        raise ConfigError(f"the package's tracker catalog {path} is damaged ({exc}); reinstall edge-track") from None


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
