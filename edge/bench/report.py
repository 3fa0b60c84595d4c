"""The bench report as a markdown table with its notes, and as a latency / accuracy plot."""

from __future__ import annotations

import numpy as np

from edge.bench.rows import NANOTRACK_PEER
from edge.bench.session import threads_list_text, threads_text


def _f(value, fmt: str, scale: float = 1.0) -> str:
    return "-" if value is None else format(value * scale, fmt)


def format_profile(prof: dict) -> list[str]:
    """Shares of the profiled run, scaled to the engine's unprofiled network median (the profiler
    itself slows every kernel a little, so its absolute times run high)."""
    total = prof["total_ms"] or 1.0
    scale = prof["net_median_ms"] / total
    lines = ["", f"Where the time goes: {prof['engine']} ({threads_text(prof.get('threads', 1))}), per-frame "
             f"{prof['graph']} graph, onnxruntime profiler "
             f"over {prof['runs']} frames; ms scaled to its network median {prof['net_median_ms']:.1f} ms"
             + (f" (FLOP ceiling {prof['flop_ceiling_ms']:.1f} ms)." if prof.get("flop_ceiling_ms") else "."), "",
             "| part | share % | ms/frame |", "|---|---|---|"]
    parts = list(prof["by_category_ms"].items()) + [("overhead (no kernel: scheduling, thread wake-ups, copies)",
                                                     prof["overhead_ms"])]
    for name, ms in parts:
        lines.append(f"| {name} | {100 * ms / total:.1f} | {ms * scale:.2f} |")
    top = ", ".join(f"{op} {100 * ms / total:.0f}%" for op, ms in list(prof["by_op_ms"].items())[:6])
    return lines + ["", f"Top op types: {top}."]


# (heading, cell) per column; the ones marked True appear only when a PyTorch baseline ran.
COLUMNS = [
    ("engine", False, lambda r: r["name"]),
    ("threads", False, lambda r: str(r["threads"])),
    ("net median ms", False, lambda r: _f(r["median_ms"], ".1f")),
    ("net p90 ms", False, lambda r: _f(r["p90_ms"], ".1f")),
    ("frame median ms", False, lambda r: f"{r['frame_median_ms']:.1f}"),
    ("FPS", False, lambda r: f"{r['fps']:.1f}"),
    ("frame / NanoTrack", False, lambda r: _f(r.get("frame_over_nanotrack"), ".2f")),
    ("RSS MB", False, lambda r: _f(r.get("rss_mb") or None, ".0f")),
    ("size MB", False, lambda r: _f(r.get("size_mb"), ".1f")),
    ("speed-up", True, lambda r: _f(r.get("speedup_vs_baseline"), ".2f") + "x"),
    ("x FLOP ceiling", True, lambda r: _f(r.get("x_over_flop_ceiling"), ".2f")),
    ("frame / net", False, lambda r: _f(r["frame_median_ms"] / r["median_ms"] if r["median_ms"] else None, ".2f")),
    ("AUC %", False, lambda r: _f(r.get("auc"), ".1f", 100)),
    ("P@20 %", False, lambda r: _f(r.get("precision_20px"), ".1f", 100)),
    ("mean IoU vs fp32", True, lambda r: _f(r.get("mean_iou_vs_fp32"), ".3f")),
    ("AUC delta", True, lambda r: _f(r.get("auc_delta"), "+.2f", 100)),
]


def format_table(report: dict) -> str:
    """The report as one markdown table (a row per engine and thread count) and its notes."""
    columns = [c for c in COLUMNS if report.get("baseline") or not c[1]]
    lines = ["| " + " | ".join(c[0] for c in columns) + " |", "|" + "---|" * len(columns)]
    for r in report["engines"]:
        lines.append("| " + " | ".join(c[2](r) for c in columns) + " |")
    counts = report["threads"]
    what = f"{report['title']}, " if report.get("title") else ""
    head = f"{what}{threads_list_text(counts)}, {report['frames']} frames of {', '.join(report['sequences'])}."
    if report.get("baseline"):
        head += f" Baseline: {report['baseline']} (templates re-encoded every frame)."
    lines += ["", head]
    lines += _ceiling_notes(report)
    lines.append(
        ("speed-up = baseline frame median / engine frame median (same thread count); " if report.get("baseline")
         else "") +
        "frame / NanoTrack = whole-frame median / OpenCV NanoTrack's at the same thread count, in this run; "
        + ("x FLOP ceiling = network median / ceiling (1.0 = the machine's GEMM peak); " if report.get("baseline")
           else "") +
        "frame / net = whole-frame median / network median (crop, normalise and box decoding on top of the "
        "network). AUC and P@20: against the ground truth of these frames. "
        + ("The bundled trackers, model files and peers are not built from the benched checkpoint (no IoU/AUC "
           "delta against it); " if report.get("baseline") else "")
        + "OpenCV's trackers and NanoTrack's loop have a whole-frame time only (their network call is inside).")
    if report.get("pace_fps"):
        fps = report["pace_fps"]
        lines.append(f"Frames paced at {fps:g} FPS, as from a camera: each starts 1/{fps:g} s after the previous "
                     "one, so inference threads go idle between frames and must wake for each.")
    if report.get("rounds", 1) > 1:
        once = " (the baseline ran once per thread count)" if report.get("baseline") else ""
        lines.append(f"Engines took turns over {report['rounds']} rounds{once}; each time is the median over rounds.")
    ratios = []
    for t in counts:
        rows = [r for r in report["engines"] if r["threads"] == t and r.get("frame_over_nanotrack") is not None
                and not r["name"].startswith(NANOTRACK_PEER) and r["name"] != report.get("baseline")]
        if rows:
            ratios.append(f"{threads_text(t)}: " + ", ".join(f"{r['name']} {r['frame_over_nanotrack']:.2f}x"
                                                             for r in rows))
    if ratios:
        lines.append(f"Whole frame over NanoTrack's (same frames, same run), {'; '.join(ratios)}.")
    if report.get("profile"):
        lines += format_profile(report["profile"])
    for name, why in report["skipped"].items():
        lines.append(f"not run: {name}: {why}")
    return "\n".join(lines)


def _ceiling_notes(report: dict) -> list[str]:
    ceil, counts = report.get("flop_ceiling"), report["threads"]
    if not ceil:
        return []
    peaks = "; ".join(f"{threads_text(t)}: fp32 {p['fp32_gflops']:.0f} GFLOP/s, int8 {p['int8_gops']:.0f} GOP/s"
                      for t, p in ((t, report["machine_peak"][str(t)]) for t in counts))
    full, cached = ceil["full"], ceil["cached"]
    ceilings = "; ".join(f"{threads_text(t)}: full {full['fp32_ms'][str(t)]:.1f} ms fp32 / "
                         f"{full['int8_ms'][str(t)]:.1f} ms int8, cached {cached['fp32_ms'][str(t)]:.1f}"
                         f" / {cached['int8_ms'][str(t)]:.1f} ms" for t in counts)
    return [f"Machine GEMM peak (onnxruntime, measured now), {peaks}. Network FLOPs per frame: "
            f"full {full['gflops_per_frame']:.2f} G, cached {cached['gflops_per_frame']:.2f} G "
            f"-> ceiling at {ceilings}."]


def plot_png(report: dict, path: str) -> None:
    """Latency (x) against accuracy (y: mean IoU vs the fp32 PyTorch tracker when a baseline ran,
    else success AUC against the ground truth), drawn with OpenCV (no plotting dependency)."""
    import cv2

    key, label = (("mean_iou_vs_fp32", "mean IoU vs fp32") if report.get("baseline") else ("auc", "success AUC"))
    W, H, m = 900, 520, 70
    img = np.full((H, W, 3), 255, np.uint8)
    rows = [r for r in report["engines"] if r.get(key) is not None]
    if not rows:
        cv2.imwrite(path, img)
        return
    xmax = max(r["frame_median_ms"] for r in rows) * 1.1
    ymin = min(min(r[key] for r in rows), 0.9) - 0.02

    def to_px(ms, v):
        return (int(m + ms / xmax * (W - 2 * m)), int(H - m - (v - ymin) / (1.0 - ymin + 0.01) * (H - 2 * m)))

    cv2.line(img, (m, H - m), (W - m, H - m), (0, 0, 0), 1)
    cv2.line(img, (m, m), (m, H - m), (0, 0, 0), 1)
    cv2.putText(img, "frame median ms", (W // 2 - 60, H - 25), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    cv2.putText(img, label, (5, m - 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    for k in range(5):
        ms = xmax * k / 4
        cv2.putText(img, f"{ms:.0f}", (to_px(ms, ymin)[0] - 10, H - m + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (0, 0, 0), 1)
    for r in rows:
        pt = to_px(r["frame_median_ms"], r[key])
        cv2.circle(img, pt, 5, (200, 60, 0), -1)
        name = r["name"] + (f" ({threads_text(r['threads'])})" if len(report["threads"]) > 1 else "")
        cv2.putText(img, name, (pt[0] + 6, pt[1] - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1)
    cv2.imwrite(path, img)
