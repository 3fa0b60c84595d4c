"""The command line on generated clips and real sequences, and its behaviour on bad input."""

import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import make_clip_frames, shared_path, write_sequence
from edge.cli.main import main


def write_video(path, frames):
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 10, frames[0].shape[1::-1])
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def read_csv(path):
    with open(path) as f:
        lines = f.read().splitlines()
    assert lines[0] == "x,y,w,h,score,state"
    return [line.split(",") for line in lines[1:]]


def one_line_failure(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("edge-track"), err
    return err


def test_track_generated_video(tmp_path, tiny_model_path, capsys):
    frames, gt = make_clip_frames(20)
    video = write_video(str(tmp_path / "clip.avi"), frames)
    csv, out = str(tmp_path / "boxes.csv"), str(tmp_path / "annotated.avi")
    init = ",".join(f"{v:g}" for v in gt[0])
    assert main(["track", "--video", video, "--init", init, "--model", tiny_model_path,
                 "--csv", csv, "--out", out]) == 0
    rows = read_csv(csv)
    assert len(rows) == 20
    assert [float(v) for v in rows[0][:4]] == list(gt[0]) and rows[0][5] == "TRACKING"
    for row in rows:
        x, y, w, h, score = map(float, row[:5])
        assert 0 <= x <= 160 and 0 <= y <= 120 and w >= 10 and h >= 10 and 0 <= score <= 1
        assert row[5] in ("TRACKING", "LOST")
    cap = cv2.VideoCapture(out)
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 20
    assert "tracked 20 frames" in capsys.readouterr().out


def test_track_annotated_folder_takes_first_box(tmp_path, tiny_model_path):
    frames, gt = make_clip_frames(6)
    folder = write_sequence(str(tmp_path / "seq"), frames, gt)
    csv = str(tmp_path / "b.csv")
    assert main(["track", "--video", os.path.join(folder, "img"), "--model", tiny_model_path, "--csv", csv]) == 0
    rows = read_csv(csv)
    assert len(rows) == 6 and [float(v) for v in rows[0][:4]] == list(gt[0])


def test_track_takes_an_annotated_sequence_folder_itself(tmp_path, tiny_model_path):
    """``--video SEQ`` as ``eval --sequences SEQ`` takes it: the frames in SEQ/img, the box from SEQ."""
    frames, gt = make_clip_frames(6)
    folder = write_sequence(str(tmp_path / "seq"), frames, gt)
    csv = str(tmp_path / "b.csv")
    assert main(["track", "--video", folder, "--model", tiny_model_path, "--csv", csv]) == 0
    rows = read_csv(csv)
    assert len(rows) == 6 and [float(v) for v in rows[0][:4]] == list(gt[0])


def test_track_real_sequence_with_bundled_sample_default(tmp_path, tiny_model_path):
    csv = str(tmp_path / "b.csv")
    assert main(["track", "--model", tiny_model_path, "--csv", csv, "--max-frames", "10"]) == 0
    rows = read_csv(csv)
    assert len(rows) == 10 and [float(v) for v in rows[0][:4]] == [205, 151, 17, 50]


def test_eval_model_and_saved_results(tmp_path, tiny_model_path, capsys):
    root = tmp_path / "seqs"
    for name, seed, n in (("a", 0, 8), ("b", 1, 5)):
        frames, gt = make_clip_frames(n, seed=seed)
        write_sequence(str(root / name), frames, gt)
    js = str(tmp_path / "r.json")
    saved = str(tmp_path / "saved")
    assert main(["eval", "--sequences", str(root), "--model", tiny_model_path, "--json", js,
                 "--save-results", saved]) == 0
    report = json.load(open(js))
    assert [s["name"] for s in report["sequences"]] == ["a", "b"]
    assert [s["frames"] for s in report["sequences"]] == [8, 5]
    assert report["mean"]["auc"] == pytest.approx(np.mean([s["auc"] for s in report["sequences"]]))
    # Rescoring the saved predictions without running anything gives the same numbers.
    js2 = str(tmp_path / "r2.json")
    assert main(["eval", "--sequences", str(root), "--results", saved, "--json", js2]) == 0
    again = json.load(open(js2))
    assert again["mean"]["auc"] == pytest.approx(report["mean"]["auc"])
    assert "| mean" in capsys.readouterr().out


def test_eval_results_of_ground_truth_is_perfect(tmp_path):
    seq = shared_path("data", "sequences", "Crossing")
    res = tmp_path / "res"
    res.mkdir()
    shutil.copy(os.path.join(seq, "groundtruth_rect.txt"), res / "Crossing.txt")
    js = str(tmp_path / "r.json")
    assert main(["eval", "--sequences", seq, "--results", str(res), "--json", js]) == 0
    assert json.load(open(js))["mean"]["auc"] == pytest.approx(20 / 21)


def test_eval_nanotrack_peer_tracks_a_real_sequence(tmp_path):
    seq = shared_path("data", "sequences", "Crossing")
    js = str(tmp_path / "r.json")
    assert main(["eval", "--sequences", seq, "--tracker", "nanotrack", "--nanotrack-dir",
                 shared_path("models", "opencv"), "--json", js]) == 0
    assert json.load(open(js))["mean"]["auc"] > 0.6  # measured 0.76


def test_eval_csrt_peer(tmp_path):
    if not hasattr(cv2, "TrackerCSRT"):
        pytest.skip("CSRT needs opencv-contrib (pip install 'edge-track[peers]')")
    seq = shared_path("data", "sequences", "Crossing")
    js = str(tmp_path / "r.json")
    assert main(["eval", "--sequences", seq, "--tracker", "csrt", "--json", js]) == 0
    assert json.load(open(js))["mean"]["auc"] > 0.6  # measured 0.77


def test_export_command(tmp_path, capsys):
    pytest.importorskip("torch")
    out = str(tmp_path / "t.onnx")
    assert main(["export", "--variant", "tiny", "--seed", "0", "--output", out]) == 0
    assert "box max abs diff" in capsys.readouterr().out and os.path.getsize(out) > 0


def test_export_of_mismatched_checkpoint_is_one_line(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    from train.models.model import build_model
    from train.models.presets import get_preset

    ckpt = str(tmp_path / "tiny.pth")
    torch.save({"net": build_model(get_preset("tiny"), seed=0).state_dict()}, ckpt)
    err = one_line_failure(capsys, ["export", "--checkpoint", ckpt, "--variant", "S", "-o", str(tmp_path / "x.onnx")])
    assert "use --variant tiny" in err
    assert not os.path.exists(tmp_path / "x.onnx")


@pytest.mark.parametrize("case", ["missing_model", "corrupt_model", "bad_init", "unreadable_video",
                                  "missing_video", "init_outside", "empty_folder", "no_init"])
def test_bad_input_is_one_line_and_exit_2(tmp_path, tiny_model_path, capsys, case):
    frames, gt = make_clip_frames(4)
    video = write_video(str(tmp_path / "clip.avi"), frames)
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(os.urandom(512))
    garbage_video = tmp_path / "garbage.mp4"
    garbage_video.write_bytes(os.urandom(4096))
    (tmp_path / "empty").mkdir()
    args = {
        "missing_model": ["--video", video, "--init", "40,30,24,20", "--model", str(tmp_path / "none.onnx")],
        "corrupt_model": ["--video", video, "--init", "40,30,24,20", "--model", str(corrupt)],
        "bad_init": ["--video", video, "--init", "40,30,-24", "--model", tiny_model_path],
        "unreadable_video": ["--video", str(garbage_video), "--init", "40,30,24,20", "--model", tiny_model_path],
        "missing_video": ["--video", str(tmp_path / "nope.mp4"), "--init", "1,1,5,5", "--model", tiny_model_path],
        "init_outside": ["--video", video, "--init", "900,900,20,20", "--model", tiny_model_path],
        "empty_folder": ["--video", str(tmp_path / "empty"), "--init", "1,1,5,5", "--model", tiny_model_path],
        "no_init": ["--video", video, "--model", tiny_model_path],
    }[case]
    one_line_failure(capsys, ["track", *args])


def test_console_script_reports_one_line(tmp_path):
    exe = shutil.which("edge-track")
    if exe is None:
        pytest.skip("edge-track is not installed (pip install -e .)")
    proc = subprocess.run([exe, "track", "--video", str(tmp_path / "none.mp4"), "--init", "1,1,2,2",
                           "--model", str(tmp_path / "m.onnx")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    proc = subprocess.run([exe, "eval", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "--sequences" in proc.stdout


def test_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as info:
        main(["track", "--model"])
    assert info.value.code == 2 and capsys.readouterr().err.count("\n") == 1


# -- hardening (#13): bad input on the command line is one line, never a traceback ------------

def usage_failure(capfd, argv):
    """main() either returns 2 or argparse exits 2; either way one line on stderr, nothing from OpenCV."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capfd.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("edge-track") and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("case", ["csv_is_dir", "csv_unmakeable", "out_gif", "max_frames_0"])
def test_track_output_paths_and_counts_are_checked(tmp_path, tiny_model_path, capfd, case):
    frames, gt = make_clip_frames(4)
    video = write_video(str(tmp_path / "clip.avi"), frames)
    base = ["track", "--video", video, "--init", "40,30,24,20", "--model", tiny_model_path]
    extra = {"csv_is_dir": ["--csv", str(tmp_path)], "csv_unmakeable": ["--csv", "/proc/nope/x.csv"],
             "out_gif": ["--out", str(tmp_path / "x.gif")], "max_frames_0": ["--max-frames", "0"]}[case]
    err = usage_failure(capfd, base + extra)
    assert "OpenCV" not in err
    assert not os.path.exists(tmp_path / "x.gif")


@pytest.mark.parametrize("extra", [["--seconds", "0"], ["--seconds", "-3"], ["--occlude", "9:8"],
                                   ["--seconds", "2", "--occlude", "5:6"], ["--delay", "-1"],
                                   ["--occlude", "0.5:0.5"], ["--occlude", "1:nan"]])
def test_sim_rejects_impossible_runs(capfd, extra):
    usage_failure(capfd, ["sim", *extra])


def test_sim_prints_reacquire_times_as_numbers(capfd):
    assert main(["sim", "--seconds", "2", "--occlude", "0.3:0.5", "--occlude", "1.8:2.5"]) == 0
    out = capfd.readouterr().out
    assert "[" not in out and "None" not in out, out
    reacquire = out.split("re-acquire ")[1].split(";")[0]
    first, second = reacquire.split(", ")
    assert float(first.rstrip(" s")) < 1.0 and second == "never", out
    assert main(["sim", "--seconds", "1"]) == 0
    assert "re-acquire" not in capfd.readouterr().out       # no occlusion, nothing to report


def test_top_level_model_option_is_honoured_by_track(tmp_path, tiny_model_path, capfd):
    frames, gt = make_clip_frames(4)
    video = write_video(str(tmp_path / "clip.avi"), frames)
    init = ",".join(f"{v:g}" for v in gt[0])
    assert main(["--model", tiny_model_path, "track", "--video", video, "--init", init]) == 0
    assert "MixFormerV2-tiny" in capfd.readouterr().out          # not the bundled nanostem model
    err = usage_failure(capfd, ["--model", str(tmp_path / "none.onnx"), "track", "--video", video, "--init", init])
    assert "none.onnx" in err
    # Given twice with different values: ambiguous, said so.
    usage_failure(capfd, ["--model", str(tmp_path / "a.onnx"), "track", "--model", tiny_model_path,
                          "--video", video, "--init", init])
    # An option the command does not take is not silently dropped.
    usage_failure(capfd, ["--model", tiny_model_path, "config", "show"])


def test_ctrl_c_while_the_command_line_loads_is_one_line_exit_130(tmp_path):
    # SIGINT arrives while OpenCV is being imported (the slow part of start-up), every time.
    hook = ("import builtins, os, signal, sys\n"
            "real = builtins.__import__\n"
            "def hooked(name, *a, **k):\n"
            "    if name == 'cv2' and 'cv2' not in sys.modules:\n"
            "        os.kill(os.getpid(), signal.SIGINT)\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = hooked\n"
            "from edge.cli.main import main\n"
            "sys.exit(main())\n")
    cfg = tmp_path / "device.yaml"
    cfg.write_text("camera: {source: \"0\"}\n")
    proc = subprocess.run([sys.executable, "-c", hook, "run", "--config", str(cfg)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr == "edge-track: interrupted\n"


def test_track_out_takes_every_ending_the_video_writer_does(tmp_path, tiny_model_path, capfd):
    # One list of endings (edge.io.video_out.SUFFIXES) for `track --out` and `telemetry.record`.
    frames, gt = make_clip_frames(4)
    video = write_video(str(tmp_path / "clip.avi"), frames)
    out = tmp_path / "new" / "annotated.mkv"          # a missing folder is created, as for --csv
    assert main(["track", "--video", video, "--init", "40,30,24,20", "--model", tiny_model_path,
                 "--out", str(out)]) == 0
    assert cv2.VideoCapture(str(out)).read()[0]
    assert capfd.readouterr().err == f"created folder {out.parent} for --out\n"
    err = usage_failure(capfd, ["track", "--video", video, "--init", "40,30,24,20", "--model", tiny_model_path,
                                "--out", str(tmp_path / "x.webm")])
    assert "--out" in err and ".mkv" in err


def test_top_level_model_stands_in_for_a_required_model(tmp_path, tiny_model_path, capfd, monkeypatch):
    import edge.engines.tensorrt_build as tensorrt_build

    built = []

    class Report:
        path, plans, fp16 = str(tmp_path / "m.engine"), {"contract": 1e6}, True

    monkeypatch.setattr(tensorrt_build, "build_engine", lambda model, output, **kw: built.append(model) or Report)
    assert main(["--model", tiny_model_path, "build-trt", "--output", str(tmp_path / "m.engine")]) == 0
    assert built == [tiny_model_path]
    # Given nowhere: still the one-line usage error naming it.
    err = usage_failure(capfd, ["build-trt", "--output", str(tmp_path / "m.engine")])
    assert "required" in err and "--model" in err and built == [tiny_model_path]


# -- the command line names what the user typed (#25) -------------------------------------------

def _help(capsys, argv):
    with pytest.raises(SystemExit) as info:
        main([*argv, "--help"])
    assert info.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def test_help_says_what_is_required_and_what_the_defaults_are(capsys):
    import argparse

    from edge.cli.main import build_parser

    usage = _help(capsys, ["build-trt"]).split(" options:")[0]
    assert "--model M.onnx" in usage and "[--model" not in usage, usage
    assert "needs --model" not in _help(capsys, ["eval"])          # mixformer defaults to the bundled model
    sim = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices["sim"]
    for action in sim._actions:
        assert action.help, f"sim {action.option_strings} has no help"
        if action.default not in (None, False, [], argparse.SUPPRESS):
            assert "default" in action.help, f"sim {action.option_strings} does not say its default"


def child(*argv, timeout=60):
    """``edge-track ARGV`` in a child process (the desk sets process-wide logging; OpenCV's log
    level is the process's too)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    return subprocess.run([sys.executable, "-m", "edge.cli.main", *argv], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_desk_camera_that_is_not_there_fails_at_once_in_one_line():
    # No machine has camera 97. Before: 30 s of retries, eight OpenCV WARN lines, then the error.
    proc = child("--camera", "97", "--init", "10,10,40,40", timeout=20)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("edge-track: error: --camera 97: "), proc.stderr
    assert "camera 97" in proc.stderr.split("--camera 97: ")[1]


def test_desk_without_a_target_says_how_to_give_one(tmp_path, tiny_model_path, capsys):
    # Before: "waiting for a target command (none can arrive without outputs)", then idle (a file: to its end).
    video = write_video(str(tmp_path / "clip.avi"), make_clip_frames(4)[0])
    err = one_line_failure(capsys, ["--camera", video, "--model", tiny_model_path])
    assert "--init x,y,w,h" in err and "--roi center:WxH" in err
    err = one_line_failure(capsys, ["--camera", video, "--init", "1,1,9,9", "--roi", "center:9x9"])
    assert "not both" in err


@pytest.mark.parametrize("flags, named", [
    (["--roi", "40x80"], ["--roi", "center:WxH"]),
    (["--roi", "center:40"], ["--roi", "center:WxH"]),
    (["--init", "40,30,-24"], ["--init", "x,y,w,h"]),
    (["--init", "900,900,20,20"], ["--init", "outside"]),             # found on the first frame
    (["--init", "40,30,24,20", "--model", "none.onnx"], ["--model", "none.onnx"]),
    (["--init", "40,30,24,20", "--camera-is", "nope.mp4"], ["--camera", "nope.mp4"]),
])
def test_desk_errors_name_the_flag_typed(tmp_path, tiny_model_path, flags, named):
    video = write_video(str(tmp_path / "clip.avi"), make_clip_frames(4)[0])
    if flags[-2] == "--camera-is":
        flags, video = flags[:-2], flags[-1]
    model = [] if "--model" in flags else ["--model", tiny_model_path]
    proc = child("--camera", video, *model, *flags)
    err = proc.stderr
    assert proc.returncode == 2 and err.count("\n") == 1 and err.startswith("edge-track: error: "), err
    assert "tracking.init" not in err and "model.path" not in err and "camera.source" not in err, err
    for text in named:
        assert text in err, err


def test_desk_on_a_file_tracks_to_its_end_and_exits(tmp_path, tiny_model_path):
    frames, gt = make_clip_frames(8)
    video = write_video(str(tmp_path / "clip.avi"), frames)
    proc = child("--camera", video, "--model", tiny_model_path, "--init", ",".join(f"{v:g}" for v in gt[0]))
    assert proc.returncode == 0, proc.stderr
    assert "stopped after 8 frames" in proc.stderr, proc.stderr


@pytest.mark.parametrize("argv", [["--init", "1,2,3,4"], ["--roi", "center:9x9"], ["--model", "m.onnx"]])
def test_a_desk_option_alone_says_what_it_lacks(capsys, argv):
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1, err      # before: the 37-line help
    assert f"{argv[0]} needs --camera" in err


def test_track_names_a_missing_video_before_asking_for_init(tmp_path, capsys):
    err = one_line_failure(capsys, ["track", "--video", str(tmp_path / "nope.mp4")])
    assert "no such video" in err and "nope.mp4" in err and "--init" not in err, err


def test_track_says_which_output_folders_it_created(tmp_path, tiny_model_path, capfd):
    frames, gt = make_clip_frames(4)
    video = write_video(str(tmp_path / "clip.avi"), frames)
    csv, out = tmp_path / "new" / "deeper" / "x.csv", tmp_path / "new" / "deeper" / "x.avi"
    assert main(["track", "--video", video, "--init", "40,30,24,20", "--model", tiny_model_path,
                 "--csv", str(csv), "--out", str(out)]) == 0
    err = capfd.readouterr().err
    assert err.splitlines() == [f"created folder {csv.parent} for --csv"], err
    assert len(read_csv(csv)) == 4 and out.is_file()
    assert main(["track", "--video", video, "--init", "40,30,24,20", "--model", tiny_model_path,
                 "--csv", str(csv)]) == 0
    assert "created" not in capfd.readouterr().err                # there now: nothing to say


def test_track_on_a_camera_that_is_not_there_is_one_line(tiny_model_path):
    proc = child("track", "--video", "97", "--init", "10,10,40,40", "--model", tiny_model_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("edge-track: error: --video 97: "), proc.stderr


@pytest.mark.parametrize("argv,says", [
    (["--camra", "0"], "unrecognized option --camra before the command"),
    (["--camera", "clip.mp4", "--roi", "center:40x40", "--out", "x.mp4"],
     "--out before the command (an option of 'track')"),
])
def test_an_unknown_option_before_the_command_is_named(argv, says, capsys):
    """Not argparse's "invalid choice: '0'", which blames the value for the flag's typo."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert says in err and "invalid choice" not in err and len(err.strip().splitlines()) == 1
