"""Step-by-step inference for unidirectional models: one step of features in, one prediction out.

A unidirectional :class:`~emotrace.models.SequenceRegressor` is causal: its output at step
:math:`t` depends on steps :math:`1..t` only. :class:`StepModel` computes that output from the
features of step :math:`t` and a small state carried over from step :math:`t-1`:

- the recurrent state of the RNN stack (:math:`h`, and :math:`c` for an LSTM), ``(layers, 1, H)``;
- ``gcnn-rnn``: the last ``kernel - 1`` projected inputs of the causal gated convolution (the
  whole-sequence model pads the start with zeros, so the buffer starts as zeros);
- ``attn-rnn``: the projected inputs of every past step (keys and values of causal
  self-attention). This cache grows by one vector of ``hidden`` floats per step, so memory is
  *not* constant for ``attn-rnn``: :math:`4 \\cdot H` bytes per step, e.g. 9.2 MB per hour at
  5 Hz with ``hidden=128``, and the cost of a step grows linearly. ``rnn`` and ``gcnn-rnn`` run
  in constant memory and constant time per step.

The input standardisation fitted on train (:class:`~emotrace.data.standardise.Standardiser`) is
part of the step: raw features in, predictions in label units out, exactly as
``emotrace predict`` computes them on the whole recording (tests check equality to 1e-5).
Feature sets z-scored per recording (``data.per_recording``) need the whole recording and
cannot be streamed.

Example::

    sp = emotrace.StreamingPredictor("runs/uni")
    for x in feature_rows:          # each (D,) raw features, feature sets in sp.features order
        y = sp.step(x)              # (K,) predictions, one per target in sp.targets
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from emotrace.errors import EmotraceError
from emotrace.models import SequenceRegressor
from emotrace.run import CONFIG, Run, load_run, run_kind


def attention(mha: nn.MultiheadAttention, query: torch.Tensor, keys: torch.Tensor, *,
              causal: bool = False) -> torch.Tensor:
    """``mha(query, keys, keys)`` in eval mode (no dropout, batch first), written with shapes
    taken from the tensors so that a traced graph (ONNX) keeps dynamic batch and time axes.

    :math:`\\mathrm{softmax}(QK^\\top / \\sqrt{d})V` per head, then the output projection; with
    ``causal`` query :math:`i` sees keys :math:`j \\le i` only (query and keys of equal length).
    """
    e, heads = mha.embed_dim, mha.num_heads
    wq, wk, wv = mha.in_proj_weight.chunk(3)
    bq, bk, bv = mha.in_proj_bias.chunk(3)

    def split(x: torch.Tensor) -> torch.Tensor:  # (B, T, E) -> (B, heads, T, E / heads)
        return x.reshape(x.shape[0], x.shape[1], heads, e // heads).transpose(1, 2)

    q = split(nn.functional.linear(query, wq, bq))
    k = split(nn.functional.linear(keys, wk, bk))
    v = split(nn.functional.linear(keys, wv, bv))
    scores = q @ k.transpose(-1, -2) / float(e // heads) ** 0.5
    if causal:
        t = torch.ones(scores.shape[-2:], dtype=torch.bool, device=scores.device).triu(1)
        scores = scores.masked_fill(t, float("-inf"))
    h = (scores.softmax(-1) @ v).transpose(1, 2).flatten(2)
    return mha.out_proj(h)


#: the model families whose step and whole-sequence graphs this module and export.py rebuild
SUPPORTED = ("rnn", "attn-rnn", "gcnn-rnn")


def load_model_run(run: Path | str | Run, *, what: str) -> Run:
    """Load a run whose model is a sequence regressor; fused and classification runs get a
    clear error (``what`` names the operation in it)."""
    if isinstance(run, Run):
        r = run
    else:
        cfg = Path(run) / CONFIG
        if cfg.is_file() and run_kind(run) == "fused":
            raise EmotraceError(f"{cfg}: a late-fusion run (`emotrace fuse`), but {what} works on "
                                f"a single model. Use it on each input run listed under "
                                f"fusion.runs instead.")
        r = load_run(run)
    if r.config.train.task == "regression" and r.config.model.name not in SUPPORTED:
        raise EmotraceError(f"{r.path / 'config.yaml'}: model {r.config.model.name!r} is not "
                            f"supported by {what} yet (supported: {', '.join(SUPPORTED)}).")
    if r.config.train.task != "regression" or not isinstance(r.model, SequenceRegressor):
        raise EmotraceError(f"{r.path / 'config.yaml'}: a {r.config.train.task} run (one class per "
                            f"segment), but {what} supports sequence regressors (one prediction "
                            f"per step) only. Use `emotrace predict` for this run.")
    if r.config.data.difficulty:
        raise EmotraceError(f"{r.path / 'config.yaml'}: trained with --difficulty, whose "
                            f"auto-encoder channels {what} does not compute. Use `emotrace "
                            f"predict` for this run, or train without --difficulty.")
    return r


def check_streamable(run: Run, *, what: str = "streaming") -> None:
    """Raise an :class:`EmotraceError` unless ``run``'s model is causal (unidirectional) and its
    inputs can be standardised one step at a time."""
    cfg = run.config
    if cfg.model.bidirectional:
        raise EmotraceError(
            f"{run.path / 'config.yaml'}: the model is bidirectional (model.bidirectional: true), "
            f"so each output depends on future steps and {what} is impossible. Train a "
            f"unidirectional model (`emotrace train ... --unidirectional`) for {what}, or export "
            f"the whole-sequence model without --streaming.")
    if cfg.data.per_recording:
        raise EmotraceError(
            f"{run.path / 'config.yaml'}: feature set(s) {cfg.data.per_recording} are z-scored "
            f"over each whole recording (data.per_recording), which needs future steps, so "
            f"{what} is impossible. Train without --per-recording for {what}.")


class StepModel(nn.Module):
    """One step of a unidirectional sequence regressor as a pure function of tensors.

    ``forward(x, *state) -> (y, *new_state)`` with ``x`` the raw features of one step ``(1, D)``
    and ``y`` the predictions ``(1, K)`` in label units. :attr:`state_names` and
    :meth:`initial_state` describe the state tensors. Being a plain module of tensor operations,
    it exports to ONNX unchanged (``emotrace export --streaming``).
    """

    def __init__(self, run: Run):
        super().__init__()
        check_streamable(run)
        model = run.model
        cfg = model.cfg
        self.name, self.cell, self.hidden = cfg.name, cfg.cell, cfg.hidden
        self.layers, self.kernel = cfg.layers, cfg.kernel
        self.proj, self.pre, self.rnn, self.head = model.proj, model.pre, model.rnn.rnn, model.head
        feats = run.config.data.features
        self.register_buffer("in_mean", torch.from_numpy(
            np.concatenate([run.standardiser.mean[f] for f in feats]).astype(np.float32)))
        self.register_buffer("in_std", torch.from_numpy(
            np.concatenate([run.standardiser.std[f] for f in feats]).astype(np.float32)))
        self.register_buffer("out_mean", model.out_mean.clone())
        self.register_buffer("out_std", model.out_std.clone())
        self.state_names = ["h"] + (["c"] if self.cell == "lstm" else [])
        if self.name == "gcnn-rnn" and self.kernel > 1:
            self.state_names.append("conv_buffer")
        if self.name == "attn-rnn":
            self.state_names.append("attn_cache")
        self.eval()

    def initial_state(self) -> list[torch.Tensor]:
        """The state before the first step (what the whole-sequence model starts from)."""
        shapes = {"h": (self.layers, 1, self.hidden), "c": (self.layers, 1, self.hidden),
                  "conv_buffer": (1, self.kernel - 1, self.hidden), "attn_cache": (1, 0, self.hidden)}
        return [torch.zeros(shapes[n]) for n in self.state_names]

    def forward(self, x: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        z = (x - self.in_mean) / self.in_std
        z = torch.where(torch.isfinite(z), z, torch.zeros_like(z))  # gaps, NaN -> train mean
        h = self.proj.proj(z).unsqueeze(1)  # (1, 1, H)
        s = dict(zip(self.state_names, state, strict=True))
        new: dict[str, torch.Tensor] = {}
        if self.name == "gcnn-rnn":
            window = torch.cat([s["conv_buffer"], h], dim=1) if self.kernel > 1 else h
            if self.kernel > 1:
                new["conv_buffer"] = window[:, 1:]
            h = nn.functional.glu(self.pre.conv(window.transpose(1, 2)), dim=1).transpose(1, 2)
        elif self.name == "attn-rnn":
            keys = torch.cat([s["attn_cache"], h], dim=1)  # the past and this step
            new["attn_cache"] = keys
            a = attention(self.pre.attn, h, keys)
            h = self.pre.norm(h + a)
        if self.cell == "lstm":
            out, (hn, cn) = self.rnn(h, (s["h"], s["c"]))
            new["h"], new["c"] = hn, cn
        else:
            out, hn = self.rnn(h, s["h"])
            new["h"] = hn
        y = self.head.net(out[:, 0]) * self.out_std + self.out_mean
        return (y, *(new[n] for n in self.state_names))


class StreamingPredictor:
    """Feed one step of raw features at a time, get one prediction at a time.

    ``run`` is a finished run folder (or a loaded :class:`~emotrace.run.Run`) of a
    unidirectional model; a bidirectional one raises :class:`EmotraceError`. The outputs equal
    the whole-recording predictions of ``emotrace predict`` step for step. Memory is constant
    for ``rnn`` and ``gcnn-rnn`` models; ``attn-rnn`` keeps every past step (see the module
    docstring).

    :attr:`features` and :attr:`dims` give the expected input layout (feature sets
    concatenated in this order); :attr:`targets` the order of the outputs. ``threads`` sets
    torch's CPU threads for the process (``torch.set_num_threads``); one is fastest for a step.
    """

    def __init__(self, run: Path | str | Run, *, threads: int | None = None):
        self.run = load_model_run(run, what="streaming")
        if threads:
            torch.set_num_threads(threads)
        self.model = StepModel(self.run)
        self.features = list(self.run.config.data.features)
        self.dims = {f: int(self.run.feature_dims[f]) for f in self.features}
        self.targets = list(self.run.config.data.targets)
        self.d_in = sum(self.dims.values())
        self.steps = 0
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next step is the first of a new recording."""
        self.state = self.model.initial_state()
        self.steps = 0

    def _input(self, features) -> torch.Tensor:
        if isinstance(features, dict):
            missing = [f for f in self.features if f not in features]
            if missing:
                raise EmotraceError(f"step(): feature set(s) {missing} missing; the model in "
                                    f"{self.run.path} needs {self.features}.")
            parts = [np.asarray(features[f], np.float32).reshape(-1) for f in self.features]
            for f, p in zip(self.features, parts, strict=True):
                if len(p) != self.dims[f]:
                    raise EmotraceError(f"step(): feature set {f!r} has {len(p)} values, the model "
                                        f"in {self.run.path} expects {self.dims[f]}.")
            x = np.concatenate(parts)
        else:
            x = np.asarray(features, np.float32).reshape(-1)
            if len(x) != self.d_in:
                raise EmotraceError(f"step(): {len(x)} feature values, the model in {self.run.path} "
                                    f"expects {self.d_in} ({self.dims} in this order).")
        return torch.from_numpy(x).unsqueeze(0)

    @torch.no_grad()
    def step(self, features) -> np.ndarray:
        """Predictions ``(K,)`` for one step; ``features`` is the raw feature vector of the step
        ``(D,)`` (feature sets concatenated in :attr:`features` order, NaN for missing values)
        or a dict ``{feature_set: values}``."""
        y, *self.state = self.model(self._input(features), *self.state)
        self.steps += 1
        return y[0].numpy()

    def state_bytes(self) -> int:
        """Bytes held by the state carried between steps."""
        return sum(t.numel() * t.element_size() for t in self.state)
