"""Training pairs for a frozen-stem model, with the teacher's answer, computed once and cached.

With the stem frozen, a training pair is fully described by the stem's features of its three
crops; caching them makes each training step cost only the transformer. Every pair also carries
NanoTrack's dense-head answer on the same features (the dense-to-sparse teacher needs no labels):
its 16x16 target-score map and its edge distributions over the student's bins.

Where pairs come from (labelled data is scarce offline, so most of it is made):

- ``otb``/``lasot``/... labelled sequences: template from one frame, search from a later one;
- ``pseudo_video``: unlabelled videos; NanoTrack itself tracks textured regions and people from
  start boxes and its tracks are the labels (stopped where its confidence drops);
- ``images``: still photos, as (a) the same region in two differently warped and recoloured
  copies of the photo and (b) a region composited onto another photo, moved and rescaled
  between template and search, among distractor patches;
- a share of negatives: a search region from another image (the score head learns absence).

Crops use the runtime's crop (``edge.trackers.crop``), colour BGR as the stem wants.
"""

from __future__ import annotations

import glob
import logging
import math
import os
from dataclasses import dataclass

import cv2
import numpy as np

from edge.camera.opencv import quiet_opencv_log
from edge.errors import DatasetError
from edge.trackers.crop import crop_and_resize, crop_window

log = logging.getLogger("train")
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
VIDEO_EXTS = (".avi", ".mp4", ".mov", ".mkv", ".webm")


@dataclass(frozen=True)
class PoolSpec:
    template_size: int
    search_size: int
    template_factor: float
    search_factor: float
    bins: int
    center_jitter: float = 0.6      # max search-centre shift, in target sizes (sqrt(w*h))
    scale_jitter: float = 0.2       # std of log search-size jitter
    negative_p: float = 0.08
    log_aspect: float = 0.6         # made-up boxes: aspect ratio exp(U(-a, a))
    same_frame_negative_p: float = 0.0   # share of negatives cut from the search frame, away from the target


# -- sources -------------------------------------------------------------------------------------

def resolve_path(path: str) -> str:
    """``pkg:NAME/sub/dir`` -> that folder inside the installed package NAME (e.g. the photos
    scikit-image ships in ``pkg:skimage/data``), so configs need no site-packages path."""
    if not path.startswith("pkg:"):
        return path
    import importlib.util

    package, _, sub = path[4:].partition("/")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.origin:
        raise DatasetError(f"data source {path}: package '{package}' is not installed")
    return os.path.join(os.path.dirname(spec.origin), sub)


def list_files(root: str, exts) -> list[str]:
    root = resolve_path(root)
    if os.path.isfile(root):
        return [root]
    files = [f for f in glob.glob(os.path.join(root, "**", "*"), recursive=True) if f.lower().endswith(exts)]
    return sorted(files)


def _read_bgr(path: str, max_side: int = 960):
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None or min(image.shape[:2]) < 64:
        return None
    scale = max_side / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return image


_CORNERS: dict = {}


def _corners(image):
    """Corner points of an image, computed once per image (pool building asks many times)."""
    cached = _CORNERS.get(id(image))
    if cached is None or cached[0] is not image:      # ids are reused once an image is freed
        cached = (image, cv2.goodFeaturesToTrack(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), 40, 0.02, 10))
        _CORNERS[id(image)] = cached
    return cached[1]


def _textured_box(rng, image, min_frac=0.06, max_frac=0.35, log_aspect=0.6):
    """A box around a corner-rich point (trackable), sized and shaped at random."""
    h, w = image.shape[:2]
    side = min(h, w) * math.exp(rng.uniform(math.log(min_frac), math.log(max_frac)))
    aspect = math.exp(rng.uniform(-log_aspect, log_aspect))
    bw, bh = side * math.sqrt(aspect), side / math.sqrt(aspect)
    corners = _corners(image)
    if corners is not None and rng.random() < 0.8:
        cx, cy = corners[int(rng.integers(len(corners)))].ravel()
    else:
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    cx, cy = np.clip(cx, bw / 2, w - bw / 2), np.clip(cy, bh / 2, h - bh / 2)
    return np.array([cx - bw / 2, cy - bh / 2, bw, bh])


def pseudo_tracks(video_path: str, model_dir: str, rng, max_frames: int = 900, track_len: int = 60,
                  min_score: float = 0.55, people: bool = True):
    """NanoTrack tracks on an unlabelled video: (frames BGR list, [(first frame, boxes (n, 4))])."""
    cap = cv2.VideoCapture(video_path)
    frames = []
    while len(frames) < max_frames:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    if len(frames) < 10:
        return frames, []
    quiet_opencv_log()
    params = cv2.TrackerNano_Params()
    params.backbone = os.path.join(model_dir, "nanotrack_backbone_sim.onnx")
    params.neckhead = os.path.join(model_dir, "nanotrack_head_sim.onnx")
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    tracks = []
    for start in range(0, len(frames) - 10, 12):
        starts = [_textured_box(rng, frames[start]) for _ in range(2)]
        if people and start % 36 == 0:
            rects, weights = hog.detectMultiScale(frames[start], winStride=(8, 8))
            starts += [np.array(r, float) for r, wt in zip(rects, np.ravel(weights)) if wt > 0.5][:3]
        for box in starts:
            tracker = cv2.TrackerNano_create(params)
            tracker.init(frames[start], tuple(int(round(v)) for v in box))
            boxes = [box]
            for k in range(start + 1, min(len(frames), start + track_len)):
                ok, b = tracker.update(frames[k])
                if not ok or tracker.getTrackingScore() < min_score or b[2] < 8 or b[3] < 8:
                    break
                boxes.append(np.array(b, float))
            if len(boxes) >= 8:
                tracks.append((start, np.stack(boxes)))
    return frames, tracks


# -- one pair ------------------------------------------------------------------------------------

def _photometric(rng, patch):
    p = patch.astype(np.float32)
    p = p * rng.uniform(0.7, 1.3) + rng.uniform(-25, 25)
    p = p * rng.uniform(0.85, 1.15, size=3)[None, None]
    if rng.random() < 0.2:
        p = cv2.GaussianBlur(p, (0, 0), rng.uniform(0.5, 1.5))
    if rng.random() < 0.2:
        p = p + rng.normal(0, rng.uniform(2, 8), p.shape)
    return np.clip(p, 0, 255).astype(np.uint8)


def _affine_copy(rng, image, box):
    """A warped copy of ``image`` (scale, small rotation, shift) and where ``box`` went."""
    h, w = image.shape[:2]
    x, y, bw, bh = box
    centre = (x + bw / 2, y + bh / 2)
    scale = math.exp(rng.normal(0, 0.15))
    angle = rng.uniform(-8, 8)
    m = cv2.getRotationMatrix2D(centre, angle, scale)
    m[:, 2] += rng.uniform(-0.15, 0.15, 2) * np.array([w, h])
    warped = cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    corners = np.array([[x, y, 1], [x + bw, y, 1], [x, y + bh, 1], [x + bw, y + bh, 1]]) @ m.T
    (x1, y1), (x2, y2) = corners.min(0), corners.max(0)
    # Rotation inflates the axis-aligned box; shrink it back towards the object's own extent.
    inflate = abs(math.cos(math.radians(angle))) + abs(math.sin(math.radians(angle)))
    cw, ch = (x2 - x1) / inflate, (y2 - y1) / inflate
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return warped, np.array([cx - cw / 2, cy - ch / 2, cw, ch])


def _paste(canvas, patch, x, y):
    h, w = canvas.shape[:2]
    ph, pw = patch.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + pw), min(h, y + ph)
    if x1 > x0 and y1 > y0:
        canvas[y0:y1, x0:x1] = patch[y0 - y:y1 - y, x0 - x:x1 - x]


def _composite(rng, obj_image, background, distractor_image, log_aspect=0.6):
    """[template image, box, search image, box]: a region of ``obj_image`` moving over ``background``
    between the two frames, among patches of ``distractor_image``."""
    x, y, w, h = (int(v) for v in _textured_box(rng, obj_image, 0.1, 0.5, log_aspect))
    obj = obj_image[y:y + h, x:x + w]
    bg = cv2.resize(background, (640, 480))
    scale = 480 * math.exp(rng.uniform(math.log(0.06), math.log(0.3))) / math.sqrt(w * h)
    pos = np.array([rng.uniform(0.15, 0.85) * 640, rng.uniform(0.15, 0.85) * 480])
    out = []
    for step in range(2):
        canvas = bg if step == 0 else np.roll(bg, tuple(int(v) for v in rng.integers(-20, 21, 2)), (0, 1))
        canvas = np.ascontiguousarray(canvas).copy()
        for _ in range(int(rng.integers(0, 3))):
            dx, dy, dw, dh = (int(v) for v in _textured_box(rng, distractor_image, 0.1, 0.4))
            d = cv2.resize(distractor_image[dy:dy + dh, dx:dx + dw], (max(4, int(dw * scale)), max(4, int(dh * scale))))
            _paste(canvas, d, int(rng.uniform(0, 600)), int(rng.uniform(0, 440)))
        ow, oh = max(6, int(w * scale)), max(6, int(h * scale))
        px, py = int(pos[0] - ow / 2), int(pos[1] - oh / 2)
        _paste(canvas, cv2.resize(obj, (ow, oh)), px, py)
        out += [canvas, np.array([px, py, ow, oh], float)]
        pos = pos + rng.normal(0, 0.5, 2) * math.sqrt(ow * oh)
        scale *= math.exp(rng.normal(0, 0.12))
    return out


def _away_from_target(rng, image, box, search_factor: float, tries: int = 8):
    """A target-sized box in ``image`` whose search window (``search_factor`` x its size) leaves
    the target wholly outside, or None where the frame has no such room."""
    h, w = image.shape[:2]
    x, y, bw, bh = box
    half = search_factor * math.sqrt(bw * bh) / 2
    for _ in range(tries):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        if cx + half < x or cx - half > x + bw or cy + half < y or cy - half > y + bh:
            return np.array([cx - bw / 2, cy - bh / 2, bw, bh])
    return None


class PairMaker:
    """Crops (template, online template, search) and the normalised target of one pair."""

    def __init__(self, spec: PoolSpec) -> None:
        self.spec = spec

    def _crop(self, image, box, factor, size):
        window = crop_window(box, factor, size)
        return crop_and_resize(image, window, size), window

    def __call__(self, rng, t_img, t_box, ot_img, ot_box, s_img, s_box, negative_centre=None, jitter=True):
        sp = self.spec
        t_patch, _ = self._crop(t_img, t_box, sp.template_factor, sp.template_size)
        ot_patch, _ = self._crop(ot_img, ot_box, sp.template_factor, sp.template_size)
        ref = s_box if s_box is not None else negative_centre
        x, y, w, h = ref
        size = np.array([w, h]) * (math.exp(rng.normal(0, sp.scale_jitter)) if jitter else 1.0)
        # Mostly near the target, as when tracking; sometimes far off-centre, as after a jump.
        reach = (sp.center_jitter if rng.random() < 0.8 else 2.0 * sp.center_jitter) if jitter else 0.0
        centre = np.array([x + w / 2, y + h / 2]) + rng.uniform(-reach, reach, 2) * math.sqrt(w * h)
        jittered = np.array([centre[0] - size[0] / 2, centre[1] - size[1] / 2, size[0], size[1]])
        s_patch, window = self._crop(s_img, jittered, sp.search_factor, sp.search_size)
        target = None
        if s_box is not None:
            k = window.resize_factor / sp.search_size
            bx, by, bw, bh = s_box
            target = np.array([(bx - window.x1) * k, (by - window.y1) * k,
                               (bx + bw - window.x1) * k, (by + bh - window.y1) * k])
            clipped = np.clip(target, 0, 1)
            if ((clipped[2] - clipped[0]) * (clipped[3] - clipped[1])
                    < 0.5 * (target[2] - target[0]) * (target[3] - target[1])):
                return None                                   # mostly outside the crop: skip
            target = clipped
        patches = [_photometric(rng, p) for p in (t_patch, ot_patch, s_patch)]
        if rng.random() < 0.05:
            patches = [cv2.cvtColor(cv2.cvtColor(p, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR) for p in patches]
        if rng.random() < 0.5:
            patches = [np.ascontiguousarray(p[:, ::-1]) for p in patches]
            if target is not None:
                target = np.array([1 - target[2], target[1], 1 - target[0], target[3]])
        return patches, target


# -- teacher -------------------------------------------------------------------------------------

class DenseTeacher:
    """NanoTrack's head on stem features: (score map (16, 16), boxes (16, 16, 4) xyxy in [0, 1])."""

    GRID = 16     # the head's fixed search grid (256 px crops of our stem)

    def __init__(self, model_dir: str) -> None:
        import onnxruntime as ort

        path = os.path.join(model_dir, "nanotrack_head_sim.onnx")
        if not os.path.isfile(path):
            raise DatasetError(f"{path}: NanoTrack head not found (teacher.path must be the NanoTrack folder)")
        self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])

    def __call__(self, zf: np.ndarray, xf: np.ndarray):
        from train.distill.teachers import NanoTrackTeacher, decode_nanotrack

        cls, loc = self.session.run(None, {"input1": zf[None].astype(np.float32),
                                           "input2": xf[None].astype(np.float32)})
        score, boxes = decode_nanotrack(cls, loc)
        # Normalised to the crop: NanoTrack's 255 px and our search_size px cover the same region.
        return score.astype(np.float32), (boxes / NanoTrackTeacher.SEARCH).astype(np.float32)


# -- the pool ------------------------------------------------------------------------------------

class _Sources:
    """Everything pairs are drawn from, loaded once: labelled videos, pseudo-tracks, photos."""

    def __init__(self, sources, model_dir: str, rng, log_aspect: float = 0.6) -> None:
        from train.data.sources import load_videos

        self.log_aspect = log_aspect
        self.labelled, self.tracks, self.images, self.weights = [], [], [], {}
        for src in sources:
            if src.kind == "images":
                for path in list_files(src.path, IMAGE_EXTS):
                    image = _read_bgr(path)
                    if image is not None:
                        self.images.append(image)
                self.weights["images"] = self.weights.get("images", 0.0) + src.weight
            elif src.kind == "pseudo_video":
                for path in list_files(src.path, VIDEO_EXTS):
                    frames, tracks = pseudo_tracks(path, model_dir, rng)
                    self.tracks += [(frames, start, boxes) for start, boxes in tracks]
                    log.info("%s: %d pseudo-tracks", os.path.basename(path), len(tracks))
                self.weights["pseudo"] = self.weights.get("pseudo", 0.0) + src.weight
            else:
                videos = load_videos(src.path, src.kind, exclude=src.exclude)
                self.labelled += videos
                log.info("%s: %d labelled sequences (%d held out)", src.path, len(videos), len(src.exclude))
                self.weights["labelled"] = self.weights.get("labelled", 0.0) + src.weight
        empty = [k for k, n in (("images", len(self.images)), ("pseudo", len(self.tracks)),
                                ("labelled", len(self.labelled))) if k in self.weights and n == 0]
        if empty:
            raise DatasetError(f"data source of kind '{empty[0]}' yielded nothing (check its path)")
        if not self.weights:
            raise DatasetError("no data sources")

    def draw(self, rng):
        """(t_img, t_box, ot_img, ot_box, s_img, s_box) of one positive pair."""
        kinds = list(self.weights)
        p = np.array([self.weights[k] for k in kinds])
        kind = kinds[int(rng.choice(len(kinds), p=p / p.sum()))]
        if kind == "pseudo":
            frames, start, boxes = self.tracks[int(rng.integers(len(self.tracks)))]
            s = int(rng.integers(1, len(boxes)))
            t = 0 if rng.random() < 0.6 else int(rng.integers(0, s))
            ot = int(rng.integers(t, s + 1))
            return frames[start + t], boxes[t], frames[start + ot], boxes[ot], frames[start + s], boxes[s]
        if kind == "labelled":
            video = self.labelled[int(rng.integers(len(self.labelled)))]
            ok = np.flatnonzero(video.visible)
            s = int(rng.choice(ok))
            near = ok[np.abs(ok - s) <= 100]
            t, ot = int(rng.choice(near)), int(rng.choice(near))
            read = lambda i: cv2.imread(video.frames[i], cv2.IMREAD_COLOR)
            return read(t), video.boxes[t], read(ot), video.boxes[ot], read(s), video.boxes[s]
        image = self.images[int(rng.integers(len(self.images)))]
        if rng.random() < 0.5:
            box = _textured_box(rng, image, log_aspect=self.log_aspect)
            warped, moved = _affine_copy(rng, image, box)
            return image, box, image, box, warped, moved
        others = [self.images[int(rng.integers(len(self.images)))] for _ in range(2)]
        t_img, t_box, s_img, s_box = _composite(rng, image, others[0], others[1], self.log_aspect)
        return t_img, t_box, t_img, t_box, s_img, s_box

    def random_image(self, rng):
        if self.images:
            return self.images[int(rng.integers(len(self.images)))]
        frames, _, _ = self.tracks[int(rng.integers(len(self.tracks)))] if self.tracks else (None, 0, None)
        return frames[int(rng.integers(len(frames)))]


def build_pool(sources, spec: PoolSpec, samples: int, seed: int, model_dir: str, stem, batch: int = 64) -> dict:
    """``samples`` pairs as arrays: stem features (float16), target, label, teacher maps."""
    import torch

    from train.distill.teachers import dense_to_edge_probs

    rng = np.random.default_rng(seed)
    src = _Sources(sources, model_dir, rng, spec.log_aspect)
    make = PairMaker(spec)
    teacher = DenseTeacher(model_dir)
    keys = ("template", "online_template", "search", "target_xyxy", "label", "teacher_score", "teacher_probs",
            "teacher_best")
    out = {k: [] for k in keys}
    pending = []

    def flush():
        crops = [np.stack([p[i] for p, _ in pending]) for i in range(3)]
        with torch.no_grad():
            feats = [stem(torch.from_numpy(c).permute(0, 3, 1, 2).float()).numpy() for c in crops]
            teacher_search = feats[2]
            if teacher_search.shape[-1] != DenseTeacher.GRID:
                # NanoTrack's head takes its own 16x16 grid: the same window, resampled to 256 px.
                from train.models.stems import STEM_STRIDE

                side = DenseTeacher.GRID * STEM_STRIDE
                up = np.stack([cv2.resize(c, (side, side), interpolation=cv2.INTER_LINEAR) for c in crops[2]])
                teacher_search = stem(torch.from_numpy(up).permute(0, 3, 1, 2).float()).numpy()
        grid = feats[2].shape[-1]
        for j, (_, target) in enumerate(pending):
            score, boxes = teacher(feats[0][j], teacher_search[j])
            best = boxes.reshape(-1, 4)[int(np.argmax(score))]
            probs = dense_to_edge_probs(score, boxes, spec.bins).numpy()
            if grid != DenseTeacher.GRID:   # the dense target is read per student token
                score = cv2.resize(score, (grid, grid), interpolation=cv2.INTER_AREA)
            out["template"].append(feats[0][j].astype(np.float16))
            out["online_template"].append(feats[1][j].astype(np.float16))
            out["search"].append(feats[2][j].astype(np.float16))
            out["target_xyxy"].append(np.zeros(4, np.float32) if target is None else target.astype(np.float32))
            out["label"].append(np.float32(target is not None))
            out["teacher_score"].append(score.astype(np.float16))
            out["teacher_probs"].append(probs.astype(np.float16))
            out["teacher_best"].append(best.astype(np.float32))
        pending.clear()

    made = 0
    while made < samples:
        t_img, t_box, ot_img, ot_box, s_img, s_box = src.draw(rng)
        if rng.random() < spec.negative_p:
            # Half the negatives look elsewhere in the search frame itself: the other people and
            # cars there are what a drifting tracker jumps to, so the score head must reject them.
            away = (_away_from_target(rng, s_img, s_box, spec.search_factor)
                    if rng.random() < spec.same_frame_negative_p else None)
            if away is not None:
                pair = make(rng, t_img, t_box, ot_img, ot_box, s_img, None, negative_centre=away, jitter=False)
            else:
                other = src.random_image(rng)
                h, w = other.shape[:2]
                bw, bh = min(s_box[2], w / 2), min(s_box[3], h / 2)
                centre = np.array([rng.uniform(0, w - bw), rng.uniform(0, h - bh), bw, bh])
                pair = make(rng, t_img, t_box, ot_img, ot_box, other, None, negative_centre=centre)
        else:
            pair = make(rng, t_img, t_box, ot_img, ot_box, s_img, s_box)
        if pair is None:
            continue
        pending.append(pair)
        made += 1
        if len(pending) == batch:
            flush()
            if made % (batch * 40) == 0:
                log.info("pool: %d / %d pairs", made, samples)
    if pending:
        flush()
    _CORNERS.clear()
    return {k: np.stack(v) for k, v in out.items()}
