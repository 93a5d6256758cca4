"""Hyper-parameter search on Ray Tune: every trial is a normal ``emotrace train`` run.

The space file (``base:`` a RunConfig fragment, ``space:`` dotted option → distribution), the
searches (``random``, ``grid``, ``optuna``) and ASHA (Li et al. 2020, "A System for Massively
Parallel Hyperparameter Tuning") are described in docs/usage.md, "Hyper-parameter search on Ray
Tune". Every key is checked against :class:`~emotrace.config.RunConfig` and every value validated
before Ray starts. Trials are ranked by devel CCC (never test), averaged over their seeds.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from emotrace.config import DataConfig, ModelConfig, RunConfig, TrainConfig, merge, read_yaml
from emotrace.errors import EmotraceError
from emotrace.fileio import write_json, write_text, writes
from emotrace.train.loop import EpochEvent
from emotrace.workflows.cluster import connect

SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
#: distribution name -> number of arguments (None = a list of values)
DISTRIBUTIONS = {"choice": None, "grid": None, "uniform": 2, "loguniform": 2, "randint": 2,
                 "quniform": 3}
SEARCHES = ("random", "grid", "optuna")
TRIALS, RAY = "trials", "ray"


def _key_lines(path: Path) -> dict[str, int]:
    """1-based line of every key under ``space:`` (dotted, nested keys joined)."""
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return {}
    lines: dict[str, int] = {}

    def walk(node, prefix: str) -> None:
        if not isinstance(node, yaml.MappingNode):
            return
        for k, v in node.value:
            name = f"{prefix}{k.value}"
            lines.setdefault(name, k.start_mark.line + 1)
            walk(v, f"{name}.")

    walk(root, "")
    return lines


def _flatten(space: dict, prefix: str = "") -> dict[str, Any]:
    """``{"model": {"hidden": {...}}}`` and ``{"model.hidden": {...}}`` both give the dotted form."""
    out: dict[str, Any] = {}
    for k, v in space.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict) and not (len(v) == 1 and next(iter(v)) in DISTRIBUTIONS) \
                and "." not in name:
            out.update(_flatten(v, f"{name}."))
        else:
            out[name] = v
    return out


def _nest(flat: dict[str, Any]) -> dict:
    out: dict = {}
    for key, v in flat.items():
        section, field = key.split(".", 1)
        out.setdefault(section, {})[field] = v
    return out


class Space:
    """A validated search space: fixed ``base`` options plus dotted-key distributions."""

    def __init__(self, base: dict, params: dict[str, tuple[str, list]], source: str = "space"):
        self.base, self.params, self.source = base, params, source

    @classmethod
    def load(cls, path: Path | str, *, base: dict | None = None) -> Space:
        """Read and validate a space file; ``base`` (e.g. from command-line flags) overrides the
        file's ``base:``."""
        path = Path(path)
        raw = read_yaml(path)
        lines = _key_lines(path)
        return cls.from_dict(raw, base=base, source=str(path), lines=lines)

    @classmethod
    def from_dict(cls, raw: dict, *, base: dict | None = None, source: str = "space",
                  lines: dict[str, int] | None = None) -> Space:
        lines = lines or {}

        def where(key: str) -> str:
            line = lines.get(f"space.{key}") or lines.get(key)
            return f"{source}, line {line}" if line else source

        unknown_top = [k for k in raw if k not in ("base", "space")]
        if unknown_top:
            k = unknown_top[0]
            raise EmotraceError(f"{where(k)}: unknown top-level key {k!r}. A space file has `base:` "
                                f"(fixed options) and `space:` (option -> distribution).")
        file_base = raw.get("base") or {}
        if not isinstance(file_base, dict):
            raise EmotraceError(f"{source}: `base:` must be a mapping of data:, model:, train:.")
        merged_base = merge(file_base, base or {})
        space = raw.get("space") or {}
        if not isinstance(space, dict) or not space:
            raise EmotraceError(f"{source}: `space:` is missing or empty. List at least one option, "
                                f"e.g. `model.hidden: {{choice: [64, 128]}}`.")
        params: dict[str, tuple[str, list]] = {}
        for key, spec in _flatten(space).items():
            parts = key.split(".")
            if len(parts) != 2 or parts[0] not in SECTIONS:
                raise EmotraceError(f"{where(key)}: unknown option {key!r}. Options are "
                                    f"`data.<field>`, `model.<field>` or `train.<field>`.")
            section, field = parts
            fields = SECTIONS[section].model_fields
            if field not in fields:
                raise EmotraceError(f"{where(key)}: unknown option {key!r}; {section} has "
                                    f"{', '.join(sorted(fields))}. Fix the spelling.")
            if isinstance(spec, dict):
                if len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS:
                    raise EmotraceError(f"{where(key)}: {key!r} must be a value or one of "
                                        f"{{{', '.join(f'{d}: ...' for d in DISTRIBUTIONS)}}} "
                                        f"(got {spec!r}).")
                dist, args = next(iter(spec.items()))
            else:
                dist, args = "choice", [spec]
            arity = DISTRIBUTIONS[dist]
            if not isinstance(args, list) or not args or (arity and len(args) != arity):
                need = "a non-empty list of values" if arity is None else f"a list of {arity} numbers"
                raise EmotraceError(f"{where(key)}: {key}: {dist} needs {need} (got {args!r}).")
            if arity is not None:
                if not all(isinstance(a, int | float) and not isinstance(a, bool) for a in args):
                    raise EmotraceError(f"{where(key)}: {key}: {dist} bounds must be numbers (got "
                                        f"{args!r}); write 1.0e-4, not 1e-4, for YAML to read a "
                                        f"number.")
                if args[0] >= args[1] or (dist == "loguniform" and args[0] <= 0):
                    raise EmotraceError(f"{where(key)}: {key}: {dist} needs low < high"
                                        f"{' and low > 0' if dist == 'loguniform' else ''} "
                                        f"(got {args!r}).")
                if dist == "randint" and not all(isinstance(a, int) for a in args):
                    raise EmotraceError(f"{where(key)}: {key}: randint bounds must be integers "
                                        f"(got {args!r}).")
                values = args[:2]
            else:
                values = args
            check = _with_data(merged_base)
            for name in ("features", "targets"):  # may come from the space itself
                check["data"][name] = check["data"].get(name) or [f"<{name}>"]
            for v in values:  # every listed value (and both bounds) must make a valid config
                try:
                    RunConfig.from_dict(merge(check, {section: {field: v}}), source="")
                except EmotraceError as e:
                    detail = str(e).lstrip(": ")
                    raise EmotraceError(f"{where(key)}: {key} = {v!r} is not a valid option "
                                        f"value ({detail}) Fix the value.") from None
            params[key] = (dist, list(args))
        cfg = _with_data(merged_base)
        if not cfg["data"].get("features") or not cfg["data"].get("targets"):
            if "data.features" not in params or "data.targets" not in params:
                missing = [k for k in ("features", "targets") if not cfg["data"].get(k)
                           and f"data.{k}" not in params]
                if missing:
                    raise EmotraceError(f"{source}: no data.{missing[0]}. Pass --features and "
                                        f"--target, or set them under `base: data:`.")
        return cls(merged_base, params, source)

    def ray_space(self, search: str) -> dict:
        """The ``param_space`` for Ray Tune (dotted keys, Ray domains)."""
        from ray import tune

        out: dict = {}
        for key, (dist, args) in self.params.items():
            if search == "grid" and dist not in ("choice", "grid"):
                raise EmotraceError(f"{self.source}: {key}: {dist} is continuous, which a grid "
                                    f"search cannot enumerate. Use `choice:`/`grid:` lists, or "
                                    f"--search random / optuna.")
            if search == "optuna" and dist == "grid":
                raise EmotraceError(f"{self.source}: {key}: `grid:` values are enumerated, which "
                                    f"Optuna cannot do. Use `choice:` with --search optuna.")
            if dist == "grid" or (search == "grid" and dist == "choice"):
                out[key] = tune.grid_search(args)
            elif dist == "choice":
                out[key] = tune.choice(args)
            elif dist == "uniform":
                out[key] = tune.uniform(*args)
            elif dist == "loguniform":
                out[key] = tune.loguniform(*args)
            elif dist == "randint":
                out[key] = tune.randint(args[0], args[1] + 1)  # inclusive, as documented
            elif dist == "quniform":
                out[key] = tune.quniform(*args)
        return out

    def grid_size(self) -> int:
        return math.prod(len(a) for d, a in self.params.values() if d in ("choice", "grid"))

    def config(self, values: dict[str, Any]) -> RunConfig:
        """The RunConfig of one trial: ``base`` with the sampled ``values`` (dotted keys)."""
        return RunConfig.from_dict(merge(_with_data(self.base), _nest(values)),
                                   source=f"{self.source} (trial {values})")


def _with_data(base: dict) -> dict:
    return merge({"data": {}}, base)


def _plain(v: Any) -> Any:
    """numpy scalars from Ray's samplers -> builtins (for YAML / JSON)."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def _trial(values: dict, *, ctx: dict) -> None:
    """One Ray Tune trial: a normal ``emotrace.fit`` run under ``OUT/trials/<trial>``.

    Reports after every epoch: ``epoch`` and ``asha_ccc`` (the devel CCC at the best epoch so
    far, averaged over the ``rank_by`` targets, as the final ranking is) while the first seed
    trains, which is what ASHA judges, and ``score`` (the mean of that over the started seeds)
    throughout.
    """
    import torch
    from ray import tune

    from emotrace.api import fit

    space = Space(ctx["base"], ctx["params"], ctx["source"])
    cfg = space.config({k: _plain(v) for k, v in values.items()})
    if cfg.train.threads == 0:
        cfg.train.threads = ctx["threads"]
    torch.set_num_threads(cfg.train.threads)
    trial_id = tune.get_context().get_trial_id()
    out = Path(ctx["out"]) / TRIALS / f"trial_{trial_id.split('_')[-1]}"
    best: dict[int, float] = {}

    def on_event(e) -> None:
        if not isinstance(e, EpochEvent):  # progress within an epoch
            return
        score = _rank_score(e.best_targets, ctx["rank_by"]) if e.best_targets else e.best_score
        if e.group:  # --cv: ASHA and the running score follow the first fold only
            return
        best[e.seed_index] = score if np.isfinite(score) else -1.0
        result = {"score": float(np.mean(list(best.values()))), "seed_index": e.seed_index,
                  "seed_epoch": e.epoch, "run": str(out)}
        if e.seed_index == 0:
            result.update(epoch=e.epoch, asha_ccc=best[0])
        tune.report(result)

    metrics = fit(ctx["data"], out=out, config=cfg, on_event=on_event)
    scores = _seed_scores(metrics, ctx["rank_by"])
    tune.report({"score": float(np.mean(scores)), "score_std": float(np.std(scores)),
                 "seeds_done": len(scores), "run": str(out), "finished": True})


def _rank_score(ccc: dict[str, float], rank_by: list[str] | None) -> float:
    """The mean of per-target CCCs over the ``rank_by`` targets (default: all of them)."""
    names = [t for t in (rank_by or ccc) if t in ccc] or list(ccc)
    return float(np.mean([ccc[t] for t in names]))


def _seed_scores(metrics: dict, rank_by: list[str] | None = None) -> list[float]:
    """Each seed's devel CCC at its best epoch, averaged over the ``rank_by`` targets (default:
    all the run's targets). For a cross-validated run (``train.cv``): each fold's held-out CCC
    (of the seed that fold kept), so a trial is ranked by the mean over folds."""
    out = []
    held_out = [f["held_out"] for f in metrics["cv"]["per_fold"]] if "cv" in metrics else None
    for d in held_out or [s["devel"] for s in metrics["seeds"]]:
        if "ccc" in d:  # a single-target run
            out.append(float(d["ccc"]))
        else:
            out.append(_rank_score({t: m["ccc"] for t, m in d.items()}, rank_by))
    return out


def _ray_init(address: str | None, cpus: int | None) -> None:
    """Ray Tune's settings, then Ray (local, or the cluster at ``address``; see cluster.py)."""
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # no tensorboardX/CSV loggers
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_MAX_PENDING_TRIALS_PG", "1")
    # ASHA's metric is reported during a trial's first seed only (see _trial)
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"
    connect(address, cpus)


def _space(space: Path | str | Space, features: list[str] | None,
           targets: list[str] | None) -> Space:
    """The space, with ``--features`` / ``--target`` overriding its ``base: data:``."""
    flags = {"data": {"features": features or None, "targets": targets or None}}
    if isinstance(space, Space):
        return Space.from_dict({"base": merge(space.base, flags),
                                "space": {k: {d: a} for k, (d, a) in space.params.items()}},
                               source=space.source)
    return Space.load(space, base=flags)


def _check_rank_by(sp: Space, rank_by: list[str] | None) -> None:
    known = set(_with_data(sp.base)["data"].get("targets") or [])
    if "data.targets" in sp.params:
        known |= {t for ts in sp.params["data.targets"][1] for t in ts}
    unknown = [t for t in rank_by or [] if t not in known]
    if unknown:
        raise EmotraceError(f"--rank-by {unknown[0]}: not a target of the search (targets: "
                            f"{', '.join(sorted(known))}). Rank by one of them.")


def _searcher(search: str, seed: int, concurrent: int):
    """Ray Tune's search algorithm for ``search``."""
    from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter

    if search != "optuna":
        return BasicVariantGenerator(random_state=seed)
    try:
        from ray.tune.search.optuna import OptunaSearch
        searcher = ConcurrencyLimiter(OptunaSearch(metric="score", mode="max", seed=seed),
                                      max_concurrent=concurrent)
        import optuna
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    except (ImportError, AssertionError):
        raise EmotraceError('--search optuna needs Optuna: pip install "emotrace[tune]".') \
            from None
    return searcher


def _asha(sp: Space, grace: int, reduction: int):
    """ASHA over epochs, up to the most epochs any trial of the space may run."""
    from ray.tune.schedulers import ASHAScheduler

    max_epochs = sp.base.get("train", {}).get("epochs", TrainConfig.model_fields["epochs"].default)
    epochs_param = sp.params.get("train.epochs")
    if epochs_param:
        max_epochs = max(a for a in (epochs_param[1] if epochs_param[0] in ("choice", "grid")
                                     else epochs_param[1][:2]))
    if not 1 <= grace <= int(max_epochs):
        raise EmotraceError(f"--grace {grace}: ASHA's first cut comes after --grace epochs, but "
                            f"trials run at most {int(max_epochs)} epochs. Pass --grace between 1 "
                            f"and {int(max_epochs)}, or --no-asha.")
    # max_t beyond every seed's last epoch: the trial is never stopped for having run long
    # enough, only for being in the bottom part of a rung.
    return ASHAScheduler(time_attr="epoch", metric="asha_ccc", mode="max",
                         max_t=int(max_epochs) + 1, grace_period=grace,
                         reduction_factor=reduction)


@writes("out", inputs={"--data": "data", "--space": "space"})
def tune(data: Path | str, *, space: Path | str | Space, out: Path | str,
         features: list[str] | None = None, targets: list[str] | None = None,
         trials: int = 20, search: str = "random", asha: bool = True, grace: int = 5,
         reduction: int = 3, address: str | None = None, cpus: int | None = None,
         cpus_per_trial: int = 1, seed: int = 0, rank_by: list[str] | None = None,
         progress: Callable[[int, int], None] | None = None) -> dict:
    """Search hyper-parameters with Ray Tune; each trial writes a run folder.

    Args:
        data: the corpus folder.
        space: the space YAML file (or a :class:`Space`).
        out: the search folder: ``trials/<trial>/`` run folders, ``results.csv``,
            ``results.json`` (ranked), ``best.yaml`` (the best finished trial's config),
            ``ray/`` (Ray Tune's own records).
        features, targets: override ``base: data:`` of the space file.
        trials: samples for ``random`` and ``optuna`` (a grid search runs its cross product).
        search: ``random``, ``grid`` or ``optuna``.
        asha: stop unpromising trials early (ASHA on the first seed's devel CCC per epoch).
        grace, reduction: ASHA's first rung (epochs) and its reduction factor η.
        address: a Ray cluster (``ray start --head`` prints it); None starts Ray locally.
        cpus: CPUs of the local Ray instance (default: all); ignored with ``address``.
        cpus_per_trial: CPUs (and torch threads) per trial.
        seed: seed of the searcher.
        rank_by: targets whose mean devel CCC ranks the trials (default: all targets of a
            trial; e.g. rank on ``arousal`` while valence is trained alongside as an auxiliary
            target). ASHA judges the mean over all of a trial's targets.
        progress: called with (finished trials, total trials).

    Returns the ranked results: ``{"search", "trials": [...], "best": {...}}``.
    """
    if search not in SEARCHES:
        raise EmotraceError(f"--search {search!r}: unknown search. Use {', '.join(SEARCHES)}.")
    if trials < 1:
        raise EmotraceError(f"--trials {trials}: need at least 1 trial.")
    data, out = Path(data).resolve(), Path(out).resolve()
    if not data.is_dir():
        raise EmotraceError(f"{data}: corpus folder not found. Pass the folder that holds "
                            f"feature_segments/, label_segments/ and metadata/.")
    sp = _space(space, features, targets)
    try:
        import ray  # noqa: F401
        from ray import tune as rt
    except ImportError:
        raise EmotraceError('hyper-parameter search needs Ray Tune: pip install "emotrace[tune]".') \
            from None
    param_space = sp.ray_space(search)  # raises before Ray starts
    _check_rank_by(sp, rank_by)
    if out.exists() and (out / "results.json").exists():
        raise EmotraceError(f"{out}: already holds a finished search. Choose another --out.")
    if out.exists() and (out / TRIALS).exists() and any((out / TRIALS).iterdir()):
        raise EmotraceError(f"{out}: already holds trials of another search. Choose another --out "
                            f"or delete the folder.")
    searcher = _searcher(search, seed, max(1, (cpus or os.cpu_count() or 1) // cpus_per_trial))
    num_samples = 1 if search == "grid" else trials
    grid_keys = [k for k, (d, _) in sp.params.items()
                 if d == "grid" or (search == "grid" and d == "choice")]
    total = num_samples * math.prod(len(sp.params[k][1]) for k in grid_keys)
    scheduler = _asha(sp, grace, reduction) if asha else None
    ctx = {"base": sp.base, "params": sp.params, "source": sp.source, "data": str(data),
           "out": str(out), "threads": cpus_per_trial, "rank_by": rank_by}
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "space.yaml", yaml.safe_dump(
        {"base": sp.base, "space": {k: {d: a} for k, (d, a) in sp.params.items()}}, sort_keys=False))
    start = time.perf_counter()
    _ray_init(address, cpus)
    try:
        if progress:
            progress(0, total)
        trainable = rt.with_resources(rt.with_parameters(_trial, ctx=ctx), {"cpu": cpus_per_trial})
        tuner = rt.Tuner(
            trainable, param_space=param_space,
            tune_config=rt.TuneConfig(num_samples=num_samples, search_alg=searcher,
                                      scheduler=scheduler, reuse_actors=True),
            run_config=rt.RunConfig(name="search", storage_path=str(out / RAY), verbose=0,
                                    callbacks=[_progress_callback(progress, total)], log_to_file=True))
        grid = tuner.fit()
        rows = _rows(grid, out, rank_by)
    finally:
        import ray

        ray.shutdown()
    return _finish(out, sp, rows, search=search, asha=asha, data=data,
                   seconds=time.perf_counter() - start)


def _finish(out: Path, sp: Space, rows: list[dict], *, search: str, asha: bool, data: Path,
            seconds: float) -> dict:
    """The ranked results: ``results.json``, ``results.csv`` and the best trial's ``best.yaml``."""
    finished = [r for r in rows if r["status"] == "finished"]
    result = {"search": search, "asha": asha, "space": str(sp.source), "data": str(data),
              "trials": rows, "seconds": seconds, "n_trials": len(rows),
              "n_finished": len(finished), "n_stopped": sum(r["status"] == "stopped" for r in rows),
              "n_errors": sum(r["status"] == "error" for r in rows),
              "best": finished[0] if finished else None}
    if finished:
        RunConfig.load(Path(finished[0]["run"]) / "config.yaml").save(out / "best.yaml")
    _write_csv(out / "results.csv", rows, list(sp.params))
    write_json(out / "results.json", result)
    return result


class _LocalOnly:
    """Wraps a driver-side function (e.g. one updating a progress bar, which holds a lock) so
    that Ray's experiment-state pickling stores a no-op instead of failing."""

    def __init__(self, fn: Callable | None) -> None:
        self.fn = fn

    def __call__(self, *args) -> None:
        if self.fn is not None:
            self.fn(*args)

    def __reduce__(self):
        return (_LocalOnly, (None,))


def _progress_callback(progress: Callable[[int, int], None] | None, total: int):
    """A Ray Tune callback counting finished trials for ``progress``."""
    from ray import tune as rt

    report = _LocalOnly(progress)

    class _Progress(rt.Callback):
        done = 0

        def on_trial_complete(self, iteration, trials, trial, **info):
            self.done += 1
            report(self.done, total)

        on_trial_error = on_trial_complete

    return _Progress()


def _rows(grid, out: Path, rank_by: list[str] | None) -> list[dict]:
    """One row per trial, from the trial's run folder (finished) or its last report."""
    rows = []
    for res in grid:
        m = res.metrics or {}
        params = {k: _plain(v) for k, v in (res.config or {}).items()}
        run = m.get("run")
        row: dict[str, Any] = {"rank": None, "run": run, "params": params, "score": None,
                               "score_std": None, "seeds": 0, "epochs": None, "seconds": None,
                               "status": "error", "error": None}
        metrics_path = Path(run) / "metrics.json" if run else None
        if res.error is not None:
            msg = str(res.error).strip().splitlines()
            row["error"] = next((x for x in reversed(msg) if "Error" in x), msg[-1] if msg else "")
        elif metrics_path and metrics_path.exists() and not (Path(run) / "train_state.pt").exists():
            metrics = json.loads(metrics_path.read_text())
            scores = _seed_scores(metrics, rank_by)
            row.update(status="finished", score=float(np.mean(scores)),
                       score_std=float(np.std(scores)), seeds=len(scores),
                       epochs=[s["best_epoch"] for s in metrics["seeds"]],
                       seconds=metrics["train_seconds"])
        else:
            row.update(status="stopped", score=m.get("score"), seeds=0,
                       epochs=[m.get("epoch")] if m.get("epoch") else None)
        rows.append(row)
    order = {"finished": 0, "stopped": 1, "error": 2}
    rows.sort(key=lambda r: (order[r["status"]], -(r["score"] if r["score"] is not None else -9)))
    for i, r in enumerate(rows, 1):
        r["rank"] = i
    return rows


def _write_csv(path: Path, rows: list[dict], keys: list[str]) -> None:
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["rank", "status", "score", "score_std", "seeds", *keys, "run", "error"])
    for r in rows:
        w.writerow([r["rank"], r["status"], r["score"], r["score_std"], r["seeds"],
                    *(json.dumps(r["params"].get(k)) if isinstance(r["params"].get(k), list)
                      else r["params"].get(k) for k in keys), r["run"], r["error"] or ""])
    write_text(path, buf.getvalue())
