"""Export a finished run to ONNX: raw features in, predictions in label units out.

Two graphs can be written:

- **whole sequence** (default): input ``features`` ``(B, T, D)`` of raw features, output
  ``predictions`` ``(B, T, K)``; batch and time axes are dynamic. The sequences of a batch must
  all be real steps (no padding): feed one recording per call, or recordings of equal length.
- **streaming** (``streaming=True``, unidirectional models only): one step per call, input
  ``features`` ``(1, D)`` plus the state tensors, outputs ``predictions`` ``(1, K)`` plus the new
  state (see :mod:`emotrace.streaming`); start from zeros, and for ``attn-rnn`` from an empty
  ``attn_cache`` of shape ``(1, 0, hidden)``.

A cross-validated run (``--cv``) exports as one whole-sequence graph of its fold ensemble
(:class:`EnsembleExport`); its streaming export is refused.

Both bake in everything ``emotrace predict`` does after loading the corpus: the per-recording
z-scoring of ``data.per_recording`` feature sets (whole-sequence graph only), the train
standardisation :math:`(x - \\mu) / \\sigma`, the replacement of missing values (NaN) by the
train mean, the model, and its output scale. ``D`` is the feature sets of the run concatenated in
the order of ``data.features``; the ONNX metadata (``emotrace.features``, ``emotrace.dims``,
``emotrace.targets``, ``emotrace.state``) records the layout.

The graph is written by PyTorch's TorchScript-based ONNX exporter (``dynamo=False``): it maps
``nn.GRU`` / ``nn.LSTM`` to the native ONNX ``GRU`` / ``LSTM`` operators with a dynamic batch axis,
which the dynamo-based exporter of torch 2.13 does not (it fixes a batch of one).
"""

from __future__ import annotations

import json
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from emotrace.errors import EmotraceError
from emotrace.fileio import atomic_path, writes
from emotrace.models.blocks import SelfAttention
from emotrace.run import CONFIG, Run, load_ensemble, run_kind
from emotrace.streaming import StepModel, attention, check_streamable, load_model_run

FORMATS = ("onnx",)
OPSET = 17


def _require_onnx():
    try:
        import onnx
    except ImportError:
        raise EmotraceError('ONNX export needs the onnx package: pip install "emotrace[export]".') from None
    return onnx


class SequenceExport(nn.Module):
    """The whole-sequence graph: raw features ``(B, T, D)`` → predictions ``(B, T, K)``."""

    def __init__(self, run: Run):
        super().__init__()
        dc = run.config.data
        model = run.model
        self.proj, self.pre, self.rnn, self.head = model.proj, model.pre, model.rnn.rnn, model.head
        self.has_pre = not isinstance(model.pre, nn.Identity)
        self.is_attention = isinstance(model.pre, SelfAttention)
        self.register_buffer("in_mean", torch.from_numpy(
            np.concatenate([run.standardiser.mean[f] for f in dc.features]).astype(np.float32)))
        self.register_buffer("in_std", torch.from_numpy(
            np.concatenate([run.standardiser.std[f] for f in dc.features]).astype(np.float32)))
        self.register_buffer("out_mean", model.out_mean.clone())
        self.register_buffer("out_std", model.out_std.clone())
        # columns z-scored over time within each recording first (data.per_recording)
        per = np.zeros(len(self.in_mean), bool)
        start = 0
        for f in dc.features:
            d = len(run.standardiser.mean[f])
            per[start:start + d] = f in dc.per_recording
            start += d
        self.any_per = bool(per.any())
        self.register_buffer("per_recording", torch.from_numpy(per))
        self.eval()

    def _zscore_over_time(self, x: torch.Tensor) -> torch.Tensor:
        finite = torch.isfinite(x)
        n = finite.sum(1, keepdim=True).clamp(min=1).to(x.dtype)
        xf = torch.where(finite, x, torch.zeros_like(x))
        mu = xf.sum(1, keepdim=True) / n
        var = (torch.where(finite, x - mu, torch.zeros_like(x)) ** 2).sum(1, keepdim=True) / n
        sd = torch.sqrt(var)
        sd = torch.where(sd > 1e-8, sd, torch.ones_like(sd))
        z = torch.where(finite, (x - mu) / sd, x)  # non-finite stay non-finite → train mean below
        return torch.where(self.per_recording, z, x)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self._zscore_over_time(features) if self.any_per else features
        z = (x - self.in_mean) / self.in_std
        z = torch.where(torch.isfinite(z), z, torch.zeros_like(z))
        h = self.proj.proj(z)
        if self.is_attention:  # nn.MultiheadAttention traces with a fixed time length
            h = self.pre.norm(h + attention(self.pre.attn, h, h, causal=self.pre.causal))
        elif self.has_pre:
            mask = torch.ones(h.shape[:2], dtype=torch.bool)
            h = self.pre(h, mask)
        h = self.rnn(h)[0]
        return self.head.net(h) * self.out_std + self.out_mean


class EnsembleExport(nn.Module):
    """The whole-sequence graph of a cross-validated run (``--cv``): every fold model's
    :class:`SequenceExport` (each with its own standardisation) on the same raw features, then
    their mean, or their median (the mean of the two middle values for an even count, as
    ``numpy.median``)."""

    def __init__(self, members: list[Run], how: str):
        super().__init__()
        self.members = nn.ModuleList([SequenceExport(m) for m in members])
        self.median = how == "median"
        self.eval()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        ys = torch.stack([m(features) for m in self.members])
        if not self.median:
            return ys.mean(0)
        s, n = ys.sort(0).values, len(self.members)
        return (s[(n - 1) // 2] + s[n // 2]) / 2


def is_ensemble(run: Path | str | Run) -> bool:
    """True for the folder of a cross-validated run (``--cv``), whose predictor is its fold
    ensemble."""
    return not isinstance(run, Run) and (Path(run) / CONFIG).is_file() and run_kind(run) == "cv"


def _members(run: Path | str, *, what: str) -> tuple[list[Run], str]:
    _, config, members = load_ensemble(run)
    return [load_model_run(m, what=what) for m in members], config.train.ensemble


@writes("out", inputs={"--run": "run"}, lock=False)  # one file, written atomically
def export(run: Path | str | Run, *, out: Path | str, format: str = "onnx",
           streaming: bool = False, opset: int = OPSET) -> Path:
    """Write ``run``'s model as an ONNX file at ``out`` (see the module docstring for the
    inputs and outputs) and return the path.

    ``streaming=True`` writes the one-step graph of a unidirectional model; a bidirectional
    model raises :class:`EmotraceError`. A cross-validated run (``--cv``) becomes one
    whole-sequence graph that averages (mean or median, as the run predicts) its fold models;
    its streaming export is refused. Compare the file with :func:`check_onnx`.
    """
    if format not in FORMATS:
        raise EmotraceError(f"--format {format!r}: unknown export format. Use one of {list(FORMATS)}.")
    onnx = _require_onnx()
    ensemble: dict | None = None
    if is_ensemble(run):
        if streaming:
            raise EmotraceError(f"{Path(run)}: a cross-validated run (--cv) exports as one "
                                f"whole-sequence graph of its fold ensemble; --streaming is not "
                                f"supported for ensembles. Drop --streaming.")
        members, how = _members(run, what="ONNX export")
        r, ensemble = members[0], {"members": len(members), "how": how}
    else:
        r = load_model_run(run, what="ONNX export")
    dc = r.config.data
    d_in = sum(int(r.feature_dims[f]) for f in dc.features)
    if ensemble is not None:
        module: nn.Module = EnsembleExport(members, ensemble["how"])
        args = (torch.zeros(2, 7, d_in),)
        inputs, outputs = ["features"], ["predictions"]
        dynamic = {"features": {0: "batch", 1: "time"}, "predictions": {0: "batch", 1: "time"}}
        state_names = []
    elif streaming:
        check_streamable(r, what="streaming export")
        module = StepModel(r)
        state = module.initial_state()
        if "attn_cache" in module.state_names:  # a non-empty example: the tracer needs real shapes
            state[module.state_names.index("attn_cache")] = torch.zeros(1, 3, module.hidden)
        args = (torch.zeros(1, d_in), *state)
        inputs = ["features", *module.state_names]
        outputs = ["predictions", *[f"{n}_out" for n in module.state_names]]
        dynamic = {"attn_cache": {1: "past"}, "attn_cache_out": {1: "past_plus_one"}}
        dynamic = {k: v for k, v in dynamic.items() if k in inputs + outputs}
        state_names = module.state_names
    else:
        module = SequenceExport(r)
        args = (torch.zeros(2, 7, d_in),)
        inputs, outputs = ["features"], ["predictions"]
        dynamic = {"features": {0: "batch", 1: "time"}, "predictions": {0: "batch", 1: "time"}}
        state_names = []
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on RNN batch sizes and deprecation
        try:
            torch.onnx.export(module, args, str(tmp), input_names=inputs, output_names=outputs,
                              dynamic_axes=dynamic, opset_version=opset, dynamo=False)
        except Exception as e:  # noqa: BLE001 - an unsupported operator is the user's dead end
            raise EmotraceError(f"{r.path}: the {r.config.model.name} model could not be exported "
                                f"to ONNX ({type(e).__name__}: {str(e).splitlines()[0]}). Try "
                                f"another --opset, or a model without this block.") from None
        proto = onnx.load(str(tmp))
        meta = {"emotrace.features": json.dumps(dc.features),
                "emotrace.dims": json.dumps({f: int(r.feature_dims[f]) for f in dc.features}),
                "emotrace.targets": json.dumps(dc.targets),
                "emotrace.model": json.dumps(r.config.model.model_dump(mode="json")),
                "emotrace.streaming": json.dumps(streaming),
                "emotrace.state": json.dumps(state_names)}
        if ensemble is not None:
            meta["emotrace.ensemble"] = json.dumps(ensemble)
        for k, v in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = k, v
        onnx.save(proto, str(tmp))
    return out


def check_onnx(path: Path | str, run: Path | str | Run, *, steps: int = 50, seed: int = 0) -> float:
    """Max absolute difference between ONNX Runtime and ``emotrace predict`` (the run's
    standardiser and model in PyTorch) on random raw features of ``steps`` steps, a few of them
    missing (NaN): one whole sequence, or ``steps`` calls of a streaming graph."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise EmotraceError('checking an ONNX file needs onnxruntime: pip install '
                            '"emotrace[export]".') from None
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    if is_ensemble(run):  # the fold models' predictions, combined as emotrace predict does
        members, how = _members(run, what="checking an ONNX file")
        x = random_features(members[0], steps=steps, seed=seed)
        reduce = np.median if how == "median" else np.mean
        want = reduce(np.stack([reference_predictions(m, x) for m in members]), axis=0)
        return float(np.abs(want - sess.run(None, {"features": x[None]})[0][0]).max())
    r = load_model_run(run, what="checking an ONNX file")
    x = random_features(r, steps=steps, seed=seed)
    want = reference_predictions(r, x)
    if names == ["features"]:
        got = sess.run(None, {"features": x[None]})[0][0]
        return float(np.abs(want - got).max())
    state = [s.numpy() for s in StepModel(r).initial_state()]
    got = []
    for t in range(steps):
        y, *state = sess.run(None, dict(zip(names, [x[t : t + 1], *state], strict=True)))
        got.append(y[0])
    return float(np.abs(want - np.stack(got)).max())


def random_features(run: Run, *, steps: int, seed: int = 0, missing: float = 0.02) -> np.ndarray:
    """Raw features ``(steps, D)`` around the run's train distribution, a fraction ``missing``
    of the cells NaN."""
    rng = np.random.default_rng(seed)
    feats = run.config.data.features
    mean = np.concatenate([run.standardiser.mean[f] for f in feats])
    std = np.concatenate([run.standardiser.std[f] for f in feats])
    x = (mean + std * rng.standard_normal((steps, len(mean))) * 1.5).astype(np.float32)
    x[rng.random(x.shape) < missing] = np.nan
    return x


def reference_predictions(run: Run, x: np.ndarray) -> np.ndarray:
    """What ``emotrace predict`` computes for one recording of raw features ``x`` ``(T, D)``."""
    from emotrace.data.corpus import Recording
    from emotrace.train.predict import predict_arrays

    feats = run.config.data.features
    ends = np.cumsum([run.feature_dims[f] for f in feats])
    parts = np.split(x, ends[:-1], axis=1)
    rec = Recording("check", "test", "check", np.arange(len(x), dtype=np.int64),
                    features=dict(zip(feats, parts, strict=True)))
    return predict_arrays(run.model, [run.standardiser.transform(rec, feats)])[0]


class _CallableModule(types.ModuleType):
    """Importing the module ``emotrace.export`` binds it to the name ``emotrace.export``, where
    the public API promises the function: calling the module calls the function."""

    def __call__(self, *args, **kwargs) -> Path:
        return export(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
