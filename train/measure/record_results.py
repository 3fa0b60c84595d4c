"""Write one measuring run's numbers into the tracker catalog (``edge/data/trackers.json``), from the
files ``edge-track eval --json`` and ``edge-track bench --json`` wrote, so that the default rule
(``edge.trackers.catalog``) and ``edge-track models`` read what was measured, never a number typed
by hand. ``train/recipes/measure_trackers.sh`` runs the whole measurement and then this.

    python -m train.measure.record_results --cpu "AMD EPYC (2 cores, AVX2)" --bench bench.json \\
        --tracker nanotrack-v3 v3.val.json v3.dev.json --peer "CSRT (OpenCV)" csrt.val.json csrt.dev.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys

from edge.trackers.catalog import CATALOG


def eval_numbers(val_path: str, dev_path: str) -> dict:
    with open(val_path, encoding="utf-8") as f:
        val = json.load(f)
    with open(dev_path, encoding="utf-8") as f:
        dev = json.load(f)
    band = lambda report: (report.get("noise") or {}).get("mean", {}).get("auc_mean", report["mean"]["auc"])
    return {"validation_auc": val["mean"]["auc"], "validation_band": band(val),
            "validation_precision": val["mean"]["precision"],
            "validation_norm_precision": val["mean"]["norm_precision"],
            "dev_auc": dev["mean"]["auc"], "dev_band": band(dev),
            "lost_on_failed": val["mean"].get("lost_on_failed"), "lost_on_tracked": val["mean"].get("lost_on_tracked"),
            "dev_lost_on_failed": dev["mean"].get("lost_on_failed"),
            "dev_lost_on_tracked": dev["mean"].get("lost_on_tracked")}


def frame_numbers(bench: dict, row_prefix: str) -> dict:
    """Whole-frame median and its ratio to OpenCV NanoTrack's at each thread count, of the bench
    row whose name starts with ``row_prefix``."""
    out = {}
    for row in bench.get("engines", []):
        if row["name"].startswith(row_prefix) and row.get("frame_median_ms") is not None:
            t = row.get("threads", 1)
            key = "1_thread" if t == 1 else f"{t}_threads"
            out[f"frame_ms_{key}"] = row["frame_median_ms"]
            out[f"frame_ratio_{key}"] = row.get("frame_over_nanotrack")
    return out


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _frame(results: dict) -> str:
    parts = [f"{results[k]:.2f}x" if results.get(k) is not None else "-"
             for k in ("frame_ratio_1_thread", "frame_ratio_2_threads")]
    return " / ".join(parts)


def results_table(catalog: dict, students: bool = False) -> str:
    """The markdown table the README, the model card and the docs show, from the catalog alone;
    with ``students`` also the students measured in the run (trained here, not shipped)."""
    lines = ["| tracker | validation AUC (band) | dev AUC | LOST on failed / tracked frames | "
             "frame vs OpenCV NanoTrack, 1 / 2 threads |", "|---|---|---|---|---|"]
    rows = [(f"`{e['name']}` ({e['precision']})", e["results"]) for e in catalog["trackers"]]
    rows += [(p["name"], p["results"]) for p in catalog.get("peers", []) if students or not p.get("student")]
    for name, r in rows:
        band = r.get("validation_band")
        val = _pct(r.get("validation_auc")) + (f" ({_pct(band)})" if band is not None else "")
        lost = f"{_pct(r.get('lost_on_failed'))} % / {_pct(r.get('lost_on_tracked'))} %"
        lines.append(f"| {name} | {val} | {_pct(r.get('dev_auc'))} | {lost} | {_frame(r)} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cpu", help="the CPU the run was made on, in words (required to record)")
    p.add_argument("--bench", help="edge-track bench --json output (frame times)")
    p.add_argument("--tracker", nargs=3, action="append", default=[], metavar=("NAME", "VAL_JSON", "DEV_JSON"),
                   help="a bundled tracker's eval outputs (repeatable)")
    p.add_argument("--peer", nargs=3, action="append", default=[], metavar=("LABEL", "VAL_JSON", "DEV_JSON"),
                   help="a tracker measured in the same run that is not bundled (repeatable)")
    p.add_argument("--student", nargs=3, action="append", default=[], metavar=("LABEL", "VAL_JSON", "DEV_JSON"),
                   help="a student trained here, not shipped, measured in the same run (repeatable; only "
                        "the tables printed with --students show it)")
    p.add_argument("--bench-row", nargs=2, action="append", default=[], metavar=("NAME_OR_LABEL", "ROW_PREFIX"),
                   help="which bench row gives a tracker's or peer's frame time (default for a bundled "
                        "tracker: 'default NAME' or 'bundled NAME')")
    p.add_argument("--command", action="append", default=[], help="a command of the run, recorded with it")
    p.add_argument("--catalog", default=CATALOG)
    p.add_argument("--table", action="store_true", help="only print the catalog's results as a markdown table")
    p.add_argument("--students", action="store_true", help="with --table: the students' rows too")
    args = p.parse_args(argv)
    with open(args.catalog, encoding="utf-8") as f:
        catalog = json.load(f)
    if args.table:
        print(results_table(catalog, students=args.students))
        return 0
    if not args.cpu:
        p.error("--cpu is required to record a run")
    bench = {}
    if args.bench:
        with open(args.bench, encoding="utf-8") as f:
            bench = json.load(f)
    rows = dict(args.bench_row)
    # Each tracker's numbers say which run measured them: one not measured now keeps its own.
    run = {"date": datetime.date.today().isoformat(), "cpu": args.cpu}
    by_name = {e["name"]: e for e in catalog["trackers"]}
    for name, val, dev in args.tracker:
        if name not in by_name:
            p.error(f"{name} is not in {args.catalog}")
        results = eval_numbers(val, dev)
        prefixes = [rows[name]] if name in rows else [f"default {name}", f"bundled {name}"]
        for prefix in prefixes:
            results.update(frame_numbers(bench, prefix))
        by_name[name]["results"] = results
        by_name[name]["measured"] = run
    peers = {peer["name"]: peer for peer in catalog.get("peers", [])}
    for label, val, dev, student in [(*peer, False) for peer in args.peer] + [(*s, True) for s in args.student]:
        peers[label] = {"name": label, "measured": run, "results": {
            **eval_numbers(val, dev), **(frame_numbers(bench, rows[label]) if label in rows else {})},
            **({"student": True} if student else {})}
    catalog["peers"] = list(peers.values())
    catalog["measured"] = {**run, "commands": args.command}
    with open(args.catalog, "w", encoding="utf-8") as f:
        json.dump(catalog, f, indent=2)
        f.write("\n")
    print(f"wrote {args.catalog}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
