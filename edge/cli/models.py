"""``edge-track models``: the bundled trackers, the numbers that measured them, and why the default is
the default; ``--model`` adds a tracker of the user's to the list."""

from __future__ import annotations

import json
import os

from edge.trackers.catalog import LOST_ON_FAILED_MIN, LOST_ON_TRACKED_MAX, Entry, load_catalog, resolve


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "models", help="the bundled trackers, their measured accuracy and speed, and which one is the default",
        description="List every tracker bundled with edge-track (and any --model given) with its family, "
                    "precision, files, licence and the numbers of the run that measured it. The default is "
                    "the bundled tracker with the best validation band mean among those whose LOST state "
                    "works; this says which and why.")
    p.add_argument("--model", action="append", default=[], metavar="NAME|PATH",
                   help="also describe this tracker: a model file or a NanoTrack folder (repeatable)")
    p.add_argument("--json", action="store_true", help="print a JSON list of objects instead of the table")
    p.set_defaults(func=run)


def _percent(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _ratio(value) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _bundled_row(entry: Entry, default: Entry | None) -> dict:
    return {"name": entry.name, "family": entry.family, "precision": entry.precision, "bundled": True,
            "default": default is not None and entry.name == default.name, "path": entry.path,
            "files": list(entry.files), "licence": entry.licence, "description": entry.description,
            "installed": entry.installed, "lost_state_works": entry.lost_state_works, "results": entry.results,
            "measured": entry.measured}


def _user_row(model: str) -> dict:
    from edge.build import open_tracker_at
    from edge.trackers.mixformer import MixFormerTracker
    from edge.trackers.nanotrack import NanoTracker

    path, entry = resolve(model)
    tracker = open_tracker_at(path)
    family = {NanoTracker: "nanotrack", MixFormerTracker: "mixformerv2"}.get(type(tracker),
                                                                          type(tracker).__name__.lower())
    files = sorted(os.listdir(path)) if os.path.isdir(path) else [os.path.basename(path)]
    return {"name": tracker.info.label, "family": family, "precision": tracker.info.precision, "bundled": False,
            "default": False, "path": os.path.abspath(path), "files": files, "licence": "-",
            "description": f"{tracker.info.model} from {path}", "results": {}}


def format_table(rows: list[dict]) -> str:
    head = ("name", "family", "precision", "default", "val AUC", "val band", "dev AUC", "val LOST on failed %",
            "val LOST on tracked %", "frame vs OpenCV NanoTrack, 1 / 2 threads", "licence")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        res = r["results"]
        lines.append("| " + " | ".join((
            r["name"], r["family"], r["precision"], "yes" if r["default"] else "",
            _percent(res.get("validation_auc")), _percent(res.get("validation_band")), _percent(res.get("dev_auc")),
            _percent(res.get("lost_on_failed")), _percent(res.get("lost_on_tracked")),
            f"{_ratio(res.get('frame_ratio_1_thread'))} / {_ratio(res.get('frame_ratio_2_threads'))}",
            r["licence"])) + " |")
    return "\n".join(lines)


def why(default: Entry | None, measured: dict) -> str:
    if default is None:
        return "no bundled tracker is installed: give --model PATH"
    if not default.eligible:
        return f"default: {default.name} (no bundled tracker has a measured LOST state that works)"
    where = ", ".join(str(measured[k]) for k in ("date", "cpu") if measured.get(k))
    return (f"default: {default.name}, the best validation band mean ({_percent(default.results['validation_band'])})"
            f" among the bundled trackers whose LOST state works (LOST on at least {LOST_ON_FAILED_MIN:.0%} of the "
            f"failed frames and at most {LOST_ON_TRACKED_MAX:.0%} of the tracked ones)"
            + (f"; measured {where}" if where else "") + ". Pick another with --model NAME|PATH.")


def run(args) -> int:
    catalog = load_catalog()
    default = catalog.default()
    rows = [_bundled_row(e, default) for e in catalog.entries] + [_user_row(m) for m in args.model]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(format_table(rows))
    print()
    print(why(default, catalog.measured))
    for r in rows:
        if r["bundled"] and not r["installed"]:
            print(f"{r['name']}: not in this install (its files are missing)")
    if catalog.measured.get("commands"):
        print("measured by: " + "; ".join(catalog.measured["commands"]))
    return 0
