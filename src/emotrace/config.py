"""Typed configuration of a run, with a YAML round-trip.

A run is fully described by :class:`RunConfig`: which data and how it is windowed, which model,
how it is trained. ``RUN/config.yaml`` is this object; ``--config FILE.yaml`` on the command line
is the same object, with flags overriding its fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from emotrace.errors import EmotraceError
from emotrace.fileio import write_text

#: the largest model size (units, layers, channels, ...): beyond it a size overflows torch's
#: index types; anything near it is refused as out of memory anyway
MAX_SIZE = 2**31 - 1
#: the largest seed: every seed must also seed NumPy (and scikit-learn), which take 32 bits
MAX_SEED = 2**32 - 1


class _Strict(BaseModel):
    # allow_inf_nan=False: `--lr inf` or `lr: .nan` in a config file is refused, not trained on
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


def _check_hop(win: int, hop: int | None) -> None:
    """Windows of ``win`` steps every ``hop``: a hop longer than the window skips steps."""
    if win and hop is not None and hop > win:
        raise ValueError(f"hop ({hop}) is longer than the window ({win}), so some steps would "
                         f"never be trained on; use a hop <= win")


class DataConfig(_Strict):
    """What the model sees: feature sets, targets, windows."""

    features: list[str] = Field(min_length=1, description="feature sets (folders of "
                                "feature_segments/) the model reads")
    targets: list[str] = Field(min_length=1, description="targets (folders of label_segments/) "
                               "to predict, one model output each")
    win: int = Field(0, ge=0, description="training window in steps; 0 = whole recordings")
    hop: int | None = Field(None, ge=1, description="hop between training windows in steps; "
                            "default win // 2")
    last_window: Literal["end-aligned", "shorter"] = Field(
        "end-aligned", description="the last training window of a recording ends at its end "
        "(end-aligned) or starts one hop after the previous one and is cut short (shorter, the "
        "MuSe 2021 baseline)")
    max_len: int = Field(500, ge=0, description="with win 0: recordings longer than this many "
                         "steps train as windows of this length (hop half of it), so training "
                         "memory does not grow with recording length; 0 = always whole recordings")
    standardize: bool = Field(True, description="z-score every feature with the train mean "
                              "and standard deviation")
    per_recording: list[str] = Field(default_factory=list, description="feature sets z-scored "
                                     "within each recording before the train standardisation")
    strict: bool = Field(False, description="NaN/inf in the corpus are errors instead of "
                         "zeroed cells counted in a warning")
    fusion: Literal["early"] = Field("early", description="how several feature sets are combined "
                                     "in one model: concatenated per step (late fusion of runs is "
                                     "`emotrace fuse`)")
    difficulty: bool = Field(False, description="append each feature set's auto-encoder "
                             "reconstruction error (fitted on train) as an input channel")
    difficulty_hidden: int = Field(16, ge=1, le=MAX_SIZE, description="difficulty: units of each "
                                   "recurrent layer of the auto-encoders")
    difficulty_layers: int = Field(1, ge=1, le=MAX_SIZE, description="difficulty: recurrent layers "
                                   "of the auto-encoders' encoder and decoder (the regressor's, "
                                   "in the auto-encoder fusion of MuSe 2021)")

    @model_validator(mode="after")
    def _hop_within_window(self) -> DataConfig:
        _check_hop(self.win, self.hop)
        return self

    @model_validator(mode="after")
    def _per_recording_known(self) -> DataConfig:
        unknown = [f for f in self.per_recording if f not in self.features]
        if unknown:
            raise ValueError(f"per_recording names {unknown}, which are not among the features "
                             f"{self.features}")
        return self

    @property
    def window_hop(self) -> int:
        return self.hop if self.hop is not None else max(self.win // 2, 1)


class ModelConfig(_Strict):
    """A sequence regressor: input projection → [pre-block] → RNN → MLP head.

    ``name`` picks the pre-block: ``rnn`` none, ``attn-rnn`` multi-head self-attention with a
    residual connection and LayerNorm, ``gcnn-rnn`` a gated 1-D convolution.
    """

    name: Literal["rnn", "attn-rnn", "gcnn-rnn"] = Field(
        "gcnn-rnn", description="the block before the RNN: none (rnn), self-attention "
        "(attn-rnn) or a gated convolution (gcnn-rnn)")
    cell: Literal["gru", "lstm"] = Field("gru", description="recurrent cell")
    hidden: int = Field(128, ge=1, le=MAX_SIZE, description="units of the input projection and of "
                        "each RNN layer and direction")
    layers: int = Field(2, ge=1, le=MAX_SIZE, description="stacked RNN layers")
    bidirectional: bool = Field(True, description="read each window in both directions; "
                                "unidirectional models can stream")
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="dropout probability in the "
                           "input projection, between RNN layers and in the head")
    heads: int = Field(4, ge=1, le=MAX_SIZE, description="attn-rnn: attention heads")
    channels: int = Field(64, ge=1, le=MAX_SIZE, description="gcnn-rnn: convolution channels")
    kernel: int = Field(3, ge=1, le=MAX_SIZE, description="gcnn-rnn: convolution width in steps")
    head_hidden: int = Field(32, ge=1, le=MAX_SIZE, description="hidden units of the MLP head")
    project: int = Field(0, ge=0, le=MAX_SIZE, description="early fusion: project the concatenated "
                         "features linearly to this many dimensions first; 0 = off")
    input_layer: Literal["linear-relu", "linear"] = Field(
        "linear-relu", description="the input projection: Linear + ReLU + dropout, or one "
        "bias-free Linear (the MuSe 2021 baseline)")
    output_scale: bool = Field(True, description="the head predicts standardised targets, mapped "
                               "to label units with the train label mean and std; off = the "
                               "head's raw output (the MuSe 2021 baseline)")

    @model_validator(mode="after")
    def _heads_divide(self) -> ModelConfig:
        if self.name == "attn-rnn" and self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be a multiple of heads ({self.heads})")
        return self


class TrainConfig(_Strict):
    """Optimisation: Adam, learning-rate halving on plateau, early stopping on devel CCC."""

    epochs: int = Field(60, ge=1, description="maximum number of epochs")
    lr: float = Field(3e-3, gt=0, description="Adam learning rate")
    batch_size: int = Field(64, ge=1, description="training windows per batch")
    loss: Literal["ccc", "ccc-batch", "mse", "l1"] = Field(
        "ccc-batch", description="1 - CCC per window (ccc) or over the whole batch "
        "(ccc-batch), mean squared (mse) or absolute (l1) error")
    weight_decay: float = Field(0.0, ge=0, description="Adam weight decay (L2 penalty)")
    modality_dropout: float = Field(0.3, ge=0, lt=1, description="probability of zeroing each "
                                    "feature set of a training window")
    clip: float = Field(1.0, ge=0, description="gradient-norm clip; 0 = off")
    lr_patience: int = Field(5, ge=0, description="epochs without devel gain before the "
                             "learning rate is multiplied by lr_factor")
    lr_factor: float = Field(0.5, gt=0, lt=1, description="factor applied to the learning "
                             "rate on a devel plateau")
    min_lr: float = Field(0.0, ge=0, description="the learning rate is never lowered below this "
                          "on a plateau")
    lr_plateau_on: Literal["devel", "train-loss"] = Field(
        "devel", description="what the learning-rate halving watches: the devel score (no gain "
        "for lr_patience epochs) or the training loss (no decrease for lr_patience epochs, as in "
        "the MuSe-Wild 2020 winner and the MuSe-Stress 2021 entries)")
    patience: int = Field(15, ge=1, description="early stopping: epochs without devel gain")
    seeds: int = Field(3, ge=1, description="how many seeds; the best on devel is kept")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="first seed; seeds are seed, seed+1, "
                      "...")
    threads: int = Field(0, ge=0, description="CPU cores the command may use in all (caps --jobs); "
                         "0 = all. Every training job uses one torch thread, so results do not "
                         "depend on it")
    jobs: int = Field(0, ge=0, description="worker processes for independent seeds and folds; "
                      "0 = one per core. Results do not depend on it")
    folds: int = Field(0, ge=0, description="write out-of-fold train predictions from this many "
                       "models cross-fitted by subject (for late fusion); 0 = in-sample")
    cv: str | None = Field(None, pattern=r"^([0-9]+|loso)$", description="cross-validate by "
                           "subject: pool train and devel, split the subjects into this many folds "
                           "(or loso: one per subject), train one model per fold (early stopping "
                           "on its held-out fold); the run predicts with the fold ensemble")
    ensemble: Literal["mean", "median"] = Field("mean", description="--cv: how the fold models' "
                                                "predictions are combined")
    task: Literal["regression", "classification"] = Field(
        "regression", description="classification: one class per segment of a class_id target "
        "(cross-entropy, early stopping on devel macro F1); the loss option is then unused")
    class_weights: bool = Field(False, description="classification: weight the cross-entropy by "
                                "inverse train class frequency")

    @model_validator(mode="after")
    def _seeds_fit(self) -> TrainConfig:
        if self.seed + self.seeds - 1 > MAX_SEED:
            raise ValueError(f"the last seed, seed + seeds - 1 = {self.seed + self.seeds - 1}, is "
                             f"above {MAX_SEED}; use a smaller seed")
        return self

    @field_validator("cv", mode="before")
    @classmethod
    def _cv_text(cls, v: object) -> object:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v


#: TrainConfig fields that say how a run is executed, not what it computes
EXECUTION = ("threads", "jobs")


class RunConfig(_Strict):
    data: DataConfig
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    def save(self, path: Path | str) -> None:
        write_text(path, self.to_yaml())

    def outcome(self) -> dict:
        """The options that decide a run's result: all but how many cores and processes it
        uses (``train.threads``, ``train.jobs``), which ``--resume`` may change."""
        d = self.model_dump(mode="json")
        d["train"] = {k: v for k, v in d["train"].items() if k not in EXECUTION}
        return d

    @classmethod
    def from_dict(cls, data: dict, *, source: str = "config") -> RunConfig:
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            raise EmotraceError(f"{source}: {explain(e)}") from None

    @classmethod
    def load(cls, path: Path | str) -> RunConfig:
        return cls.from_dict(read_yaml(path), source=str(path))


def explain(e: ValidationError) -> str:
    """One line per problem: the dotted key, what is wrong, what was given (not for a check
    across fields, whose input is the whole section: its message names the fields)."""
    parts = []
    for err in e.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown key {key!r}; remove it or fix its spelling")
        elif err["type"] == "value_error" and isinstance(err.get("input"), dict):
            parts.append(f"{key}: {err['msg'].removeprefix('Value error, ')}")
        else:
            parts.append(f"{key}: {err['msg']} (got {err.get('input')!r})")
    return "; ".join(parts) + "."


def read_yaml(path: Path | str) -> dict:
    path = Path(path)
    if not path.exists():
        raise EmotraceError(f"{path}: config file not found. Check the path.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise EmotraceError(f"{path}: not UTF-8 text (byte {e.start}). Save the file as UTF-8.") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark else ""
        raise EmotraceError(f"{path}{where}: not valid YAML ({getattr(e, 'problem', e)}). "
                            f"Fix the syntax.") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise EmotraceError(f"{path}: the top level must be a mapping (data:, model:, train:).")
    return data


def upgrade_outcome(stored):
    """A stored fingerprint with every run configuration in it (a dict of exactly ``data``,
    ``model`` and ``train``, e.g. :meth:`RunConfig.outcome`) revalidated, so fields added to
    emotrace since it was written take their defaults. An interrupted run then resumes under a
    newer emotrace as long as those new fields are at their defaults (a new field's default keeps
    the old behaviour); any other difference still counts. Anything else is returned as it is.

    >>> old = RunConfig(data=DataConfig(features=["a"], targets=["t"])).outcome()
    >>> del old["train"]["min_lr"]
    >>> upgrade_outcome({"run": old, "fold": 1})["run"]["train"]["min_lr"]
    0.0
    """
    if isinstance(stored, dict):
        if set(stored) == {"data", "model", "train"}:
            try:
                return RunConfig.model_validate(stored).outcome()
            except ValidationError:
                return stored
        return {k: upgrade_outcome(v) for k, v in stored.items()}
    return stored


def merge(base: dict, override: dict) -> dict:
    """Deep-merge ``override`` into ``base`` (override wins), ignoring ``None`` values."""
    out = dict(base)
    for k, v in override.items():
        if v is None:
            continue
        if isinstance(v, dict):
            base_k = out.get(k)
            out[k] = merge(base_k if isinstance(base_k, dict) else {}, v)
        else:
            out[k] = v
    return out


def _fusion_model() -> ModelConfig:
    return ModelConfig(name="rnn", hidden=32, layers=1, head_hidden=16)


def _fusion_train() -> TrainConfig:
    return TrainConfig(epochs=20, patience=5, lr_patience=3, modality_dropout=0.0, seeds=3)


class FuseConfig(_Strict):
    """A late-fusion run (``emotrace fuse``): which runs, and how their predictions are fused.

    Saved as ``RUN/config.yaml`` under the top-level key ``fusion``. ``model`` and ``train`` are
    used by ``method: rnn`` (a one-layer bidirectional GRU of 32 units, at most 20 epochs, by
    default); ``weighted`` uses ``train.seed`` and ``train.lr``; ``mean`` has nothing to train.
    """

    method: Literal["rnn", "weighted", "mean"] = "rnn"
    runs: list[str] = Field(min_length=2, description="the input run folders")
    targets: list[str] = Field(default_factory=list, description="filled in from the input runs")
    features: list[str] = Field(default_factory=list, description="the input runs' feature sets "
                                "(the difficulty auto-encoders read these)")
    difficulty: bool = Field(False, description="feed each feature set's auto-encoder "
                             "reconstruction error to the fusion model")
    difficulty_hidden: int = Field(16, ge=1, le=MAX_SIZE, description="difficulty: units of each "
                                   "recurrent layer of the auto-encoders")
    difficulty_layers: int = Field(1, ge=1, le=MAX_SIZE, description="difficulty: recurrent layers "
                                   "of the auto-encoders")
    win: int = Field(0, ge=0, description="rnn: training window in steps; 0 = whole recordings")
    hop: int | None = Field(None, ge=1, description="rnn: hop between training windows; default "
                            "win // 2")
    model: ModelConfig = Field(default_factory=_fusion_model)
    train: TrainConfig = Field(default_factory=_fusion_train)

    @model_validator(mode="after")
    def _hop_within_window(self) -> FuseConfig:
        _check_hop(self.win, self.hop)
        return self

    def to_yaml(self) -> str:
        return yaml.safe_dump({"fusion": self.model_dump(mode="json")}, sort_keys=False)

    def save(self, path: Path | str) -> None:
        write_text(path, self.to_yaml())

    @classmethod
    def load(cls, path: Path | str) -> FuseConfig:
        data = read_yaml(path)
        try:
            return cls.model_validate(data.get("fusion"))
        except ValidationError as e:
            raise EmotraceError(f"{path}: {explain(e)}") from None
