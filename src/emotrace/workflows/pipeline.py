"""Recipe pipelines (``emotrace run``): the steps of a recipe, in dependency order, into ``OUT``.

Layout::

    OUT/recipe.yaml          the recipe as run (after --set; the user's features and targets)
    OUT/<step>/              one normal run folder per step (train, fuse, final), or the folder of
                             `emotrace personalise` / a `scores.json` (evaluate)
    OUT/<step>/step.json     what the step computes from: a finished step whose step.json differs
                             from the recipe's is refused (exit 2), never overwritten
    OUT/results.json         every step's devel (and test, where labelled) scores

Execution: the steps whose inputs are finished form a wave. When the wave has at least as many
steps as the cores their seeds could use, its steps run as parallel jobs of the worker mechanism
(:func:`emotrace.train.workers.run_jobs`), one process and one torch thread each, their seeds in
turn; otherwise its steps run one after another, each with the whole core budget for its seeds
(worker processes cannot start workers of their own, so a step's seeds and its siblings cannot
share the budget more finely). Every training job runs on one thread either way, so results and
predictions do not depend on ``jobs``. With
``address`` the steps run as Ray tasks on an existing cluster
(:func:`emotrace.workflows.cluster.run_remote`; ``OUT`` and ``data`` must be on a file system the
cluster's nodes share).

Resuming: a step folder with its finished run (and a matching ``step.json``) is skipped; a train
step that was interrupted is continued with the trainer's resume state; steps that cannot resume
(fuse, personalise, final, evaluate) write into ``OUT/.partial-<step>/`` and are renamed into place
when they finish, so a killed one leaves no half-finished step folder and starts again.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from emotrace.config import FuseConfig, RunConfig, upgrade_outcome
from emotrace.data.muse import LABELS, read_partition
from emotrace.errors import EmotraceError
from emotrace.fileio import LOCK, check_output, folder_lock, read_json, write_json, write_text
from emotrace.recipes import LoadedRecipe, Resolved, resolve
from emotrace.run import CONFIG, METRICS, STATE
from emotrace.train.workers import default_jobs, one_thread, run_jobs

STEP_FILE, RESULTS, RECIPE = "step.json", "results.json", "recipe.yaml"
PARTIAL = ".partial-"
#: the file that marks each kind of step finished
DONE = {"train": METRICS, "fuse": METRICS, "final": METRICS, "personalise": METRICS,
        "evaluate": "scores.json"}


def _fingerprint(step: Resolved, data: Path) -> dict:
    return {"step": step.name, "kind": step.kind, "inputs": step.inputs, "spec": step.spec,
            "data": str(data.resolve())}


def _status(out: Path, step: Resolved, data: Path) -> str:
    """``todo``, ``done``, ``resume`` or ``stale`` (set up with other settings, nothing trained:
    replaced) for a step; a clear error for a folder it must not touch."""
    folder = out / step.name
    if not folder.exists():
        return "todo"
    if not (folder / STEP_FILE).is_file():
        raise EmotraceError(f"{folder}: exists but was not written by `emotrace run` (no "
                            f"{STEP_FILE}), so step {step.name!r} cannot go there. Choose another "
                            f"--out, or move the folder away.")
    saved = upgrade_outcome(read_json(folder / STEP_FILE))  # fields added since: defaults
    want = upgrade_outcome(_fingerprint(step, data))
    if saved != want and not _started(folder):  # e.g. it failed on bad input: nothing to keep
        return "stale"
    if saved != want:
        keys = sorted(k for k in want if saved.get(k) != want[k]) if isinstance(saved, dict) else []
        detail = _diff(saved.get("spec", {}), want["spec"]) if "spec" in keys else ""
        raise EmotraceError(f"{folder / STEP_FILE}: step {step.name!r} was run with other "
                            f"settings ({', '.join(keys) or 'unreadable'}{': ' + detail if detail else ''}) "
                            f"than the recipe now asks for. Its results are kept: rerun with the "
                            f"original recipe, --set and --data, or choose another --out.")
    if (folder / DONE[step.kind]).is_file() and not (folder / STATE).exists():
        return "done"
    return "resume"


#: what a train step's folder holds before its first epoch ends (nothing that is a result)
_SETUP = {STEP_FILE, CONFIG, LOCK}


def _started(folder: Path) -> bool:
    """Whether a step folder holds any result or training progress (beyond its set-up files)."""
    return any(p.name not in _SETUP and not p.name.endswith(".tmp") for p in folder.iterdir())


def _diff(old: Any, new: Any, prefix: str = "") -> str:
    """The first dotted key where two specs differ, with both values."""
    if isinstance(old, dict) and isinstance(new, dict):
        for k in sorted(old.keys() | new.keys()):
            d = _diff(old.get(k), new.get(k), f"{prefix}{k}.")
            if d:
                return d
        return ""
    if old != new:
        return f"{prefix.rstrip('.')} was {old!r}, now {new!r}"
    return ""


# ------------------------------------------------------------------------------------------------
# running one step (module level: it runs in worker processes and Ray tasks)


def _fresh(tmp: Path) -> Path:
    """An empty ``OUT/.partial-<step>/`` (what a killed earlier attempt left there is removed:
    it is never a result)."""
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def _swap_in(tmp: Path, folder: Path) -> None:
    os.replace(tmp, folder)


def run_step(step: Resolved, data: str, out: str, jobs: int, *,
             emit: Callable | None = None) -> dict:
    """Run one step into ``OUT/<step>/`` with ``jobs`` worker processes for its seeds; returns
    ``{"step", "seconds"}``."""
    import emotrace
    from emotrace.workflows.personalise import personalise

    start = time.perf_counter()
    data_p, out_p = Path(data), Path(out)
    folder = out_p / step.name
    fingerprint = _fingerprint(step, data_p)

    def on_event(event: Any) -> None:
        if emit is not None:
            emit((step.name, event))

    if step.kind == "train":
        cfg = RunConfig.from_dict(step.spec["config"], source=f"step {step.name}")
        cfg.train.jobs, cfg.train.threads = jobs, jobs
        if not folder.exists():  # the folder appears with its step.json, never without
            tmp = _fresh(out_p / f"{PARTIAL}{step.name}")
            write_json(tmp / STEP_FILE, fingerprint)
            _swap_in(tmp, folder)
        resume = (folder / STATE).exists() or (folder / CONFIG).exists()
        emotrace.fit(data_p, out=folder, config=cfg, resume=resume, on_event=on_event)
        return {"step": step.name, "seconds": time.perf_counter() - start}
    tmp = _fresh(out_p / f"{PARTIAL}{step.name}")
    runs = [out_p / i for i in step.inputs]
    if step.kind == "fuse":
        train = {**step.spec["config"]["train"], "jobs": jobs, "threads": jobs}
        fc = FuseConfig.model_validate({"runs": [str(r) for r in runs],
                                        "model": step.spec["config"]["model"], "train": train,
                                        "difficulty_hidden": step.spec["difficulty_hidden"],
                                        "difficulty_layers": step.spec["difficulty_layers"],
                                        "win": step.spec["win"], "hop": step.spec["hop"]})
        emotrace.fuse(runs, data=data_p, out=tmp, method=step.spec["method"],
                      difficulty=step.spec["difficulty"], config=fc, on_event=on_event)
    elif step.kind == "final":
        emotrace.fit_final(data_p, out=tmp, run=runs[0], epochs=step.spec.get("epochs"),
                           on_event=on_event)
    elif step.kind == "personalise":
        personalise(runs[0], data_p, out=tmp, threads=jobs, **step.spec)
    else:  # evaluate
        scores = {r.name: _evaluation(r, data_p, step.spec["partition"]) for r in runs}
        write_json(tmp / "scores.json", {"partition": step.spec["partition"], "runs": scores,
                                         "seconds": time.perf_counter() - start})
    write_json(tmp / STEP_FILE, fingerprint)
    _swap_in(tmp, folder)
    return {"step": step.name, "seconds": time.perf_counter() - start}


def _job(step: Resolved, data: str, out: str, jobs: int, *, emit: Callable) -> dict:
    return run_step(step, data, out, jobs, emit=emit)


def _remote_job(step: Resolved, data: str, out: str, jobs: int) -> dict:
    with one_thread():  # as in a local worker: the same results on the cluster
        return run_step(step, data, out, jobs)


# ------------------------------------------------------------------------------------------------
# the pipeline


def plan(recipe: LoadedRecipe, *, data: Path | str, out: Path | str,
         features: list[str] | None = None, targets: list[str] | None = None
         ) -> tuple[list[Resolved], dict[str, str]]:
    """The concrete steps and the status of each in ``out`` (``todo``, ``resume``, ``done`` or
    ``stale``); a clear error for a step with results that no longer matches the recipe. Reads
    only."""
    steps = resolve(recipe, features=features, targets=targets)
    out, data = Path(out), Path(data)
    return steps, {s.name: _status(out, s, data) for s in steps}


def run_recipe(recipe: LoadedRecipe, *, data: Path | str, out: Path | str,
               features: list[str] | None = None, targets: list[str] | None = None,
               jobs: int = 0, threads: int = 0, address: str | None = None,
               on_plan: Callable[[list[str]], None] | None = None,
               on_step: Callable[[str, str], None] | None = None,
               on_event: Callable[[str, Any], None] | None = None) -> dict:
    """Run a recipe's steps into ``out``; returns (and writes to ``OUT/results.json``) every step's
    scores. ``on_plan(names)`` gets the concrete steps; ``on_step(name, status)`` reports
    ``start``/``skip``/``resume``/``done``; ``on_event(step, event)`` relays the steps' training
    events."""
    out = check_output(out, {"--data": data})
    data = Path(data)
    started = time.perf_counter()
    with folder_lock(out):
        steps, status = plan(recipe, data=data, out=out, features=features, targets=targets)
        for name in [n for n, st in status.items() if st == "stale"]:
            shutil.rmtree(out / name)
            status[name] = "todo"
        if on_plan:
            on_plan([s.name for s in steps])
        write_text(out / RECIPE, _recipe_yaml(recipe, steps))
        for s in steps:
            if status[s.name] == "done" and on_step:
                on_step(s.name, "skip")
        cores = default_jobs()
        budget = max(1, min(jobs or cores, threads or cores))
        done = {s.name for s in steps if status[s.name] == "done"}
        ran: dict[str, float] = {}
        while len(done) < len(steps):
            ready = [s for s in steps if s.name not in done and all(i in done for i in s.inputs)]
            for s in ready:
                if on_step:
                    on_step(s.name, "resume" if status[s.name] == "resume" else "start")
            for result in _run_wave(ready, data, out, budget, address, on_event):
                done.add(result["step"])
                ran[result["step"]] = result["seconds"]
                if on_step:
                    on_step(result["step"], "done")
        results = collect(steps, data=data, out=out, recipe=recipe)
        results["wall_seconds"] = time.perf_counter() - started
        results["ran"] = ran
        results["resumed"] = [n for n in ran if status[n] == "resume"]
        write_json(out / RESULTS, results)
        return results


def _run_wave(ready: list[Resolved], data: Path, out: Path, budget: int, address: str | None,
              on_event: Callable[[str, Any], None] | None):
    """Run the steps whose inputs are finished; yields each step's result as it finishes."""
    d, o = str(data.resolve()), str(out.resolve())
    if address is not None:
        from emotrace.workflows.cluster import run_remote  # the Ray cluster runner (optional)

        yield from run_remote(_remote_job, [(s, d, o, 1) for s in ready], address=address,
                              cpus_per_job=1)
        return
    relay = (lambda e: on_event(*e)) if on_event else None
    if len(ready) < min(budget, max(_width(s) for s in ready)):
        # fewer steps than the cores their seeds could use: one step at a time, its seeds in
        # parallel (each on one thread, and the step's own predictions too, as in a worker)
        for s in ready:
            with one_thread():
                result = run_step(s, d, o, budget, emit=relay)
            yield result
        return
    # as many steps as cores, or more: one process each (one torch thread), their seeds in turn
    for _, result in run_jobs(_job, [(s, d, o, 1) for s in ready], jobs=min(budget, len(ready)),
                              on_event=relay):
        yield result


def _width(step: Resolved) -> int:
    """How many independent jobs (seeds, fine-tunings) a step has."""
    if step.kind == "personalise":
        return int(step.spec["seeds"])
    train = step.spec.get("config", {}).get("train", {})
    if step.kind not in ("train", "fuse"):
        return 1
    cv = str(train.get("cv") or "")  # --cv: seeds x folds (loso: a fold per subject, many)
    folds = int(cv) if cv.isdigit() else (1 if not cv else 1_000)
    return int(train.get("seeds", 1)) * folds


def _recipe_yaml(recipe: LoadedRecipe, steps: list[Resolved]) -> str:
    head = (f"# the recipe as run by `emotrace run` (from {recipe.source}, after --set);\n"
            f"# `steps_resolved` are its concrete steps for the feature sets and targets given\n")
    body = dict(recipe.raw)
    body["steps_resolved"] = {s.name: {"kind": s.kind, "inputs": s.inputs, **s.spec}
                              for s in steps}
    return head + yaml.safe_dump(body, sort_keys=False, allow_unicode=True)


# ------------------------------------------------------------------------------------------------
# results


def _labelled_test(data: Path, targets: list[str]) -> bool:
    """Whether every test recording of ``data`` has labels for ``targets``."""
    try:
        test = [e.id for e in read_partition(data) if e.partition == "test"]
    except EmotraceError:
        return False
    return bool(test) and all((data / LABELS / t / f"{rid}.csv").is_file()
                              for t in targets for rid in test)


def _per_target(metrics: dict | None, targets: list[str]) -> dict[str, dict]:
    """``{target: metrics}`` from a metrics dict that holds one target's metrics directly."""
    if not metrics:
        return {}
    if isinstance(metrics.get("targets"), dict):
        return metrics["targets"]
    if isinstance(metrics.get("target"), str):  # one target's evaluation
        return {metrics["target"]: metrics}
    if len(targets) == 1 and targets[0] not in metrics:
        return {targets[0]: metrics}
    return {t: metrics[t] for t in targets if isinstance(metrics.get(t), dict)}


def _evaluation(folder: Path, data: Path, partition: str) -> dict:
    """A finished run's scores on ``partition``: its ``eval_<partition>.json`` when an earlier
    evaluation wrote it (a finished run does not change), else :func:`emotrace.evaluate`."""
    import emotrace

    path = folder / f"eval_{partition}.json"
    if path.is_file():
        return read_json(path)
    return emotrace.evaluate(folder, data, partition=partition)


def _scalar(m: dict) -> dict:
    return {k: v for k, v in m.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def collect(steps: list[Resolved], *, data: Path, out: Path, recipe: LoadedRecipe) -> dict:
    """Every step's scores from its folder: devel (and per-seed devel CCC) from ``metrics.json``,
    test where ``data`` labels it (``RUN/eval_test.json``, written once)."""
    rows = []
    for s in steps:
        folder = out / s.name
        metrics = read_json(folder / DONE[s.kind])
        test_labelled = _labelled_test(data, s.targets)
        row: dict[str, Any] = {"step": s.name, "kind": s.kind, "inputs": s.inputs,
                               "folder": str(folder), "targets": {}}
        if s.kind in ("train", "fuse", "final"):
            devel = _per_target(metrics.get("devel"), s.targets)
            seeds = [_per_target(x.get("devel"), s.targets) for x in metrics.get("seeds", [])]
            test = (_per_target(_evaluation(folder, data, "test"), s.targets) if test_labelled
                    else {})
            for t in s.targets:
                row["targets"][t] = {
                    "devel": _scalar(devel.get(t, {})) or None,
                    "test": _scalar(test.get(t, {})) or None,
                    "devel_seeds": [x[t]["ccc"] for x in seeds if t in x and "ccc" in x[t]]}
            row["seconds"] = metrics.get("wall_seconds", metrics.get("train_seconds"))
        elif s.kind == "personalise":
            part = metrics["partition"]
            for t, v in metrics["targets"].items():
                g = v["global"]
                row["targets"][t] = {part: {"ccc": g["personal"]}, "general": g["general"],
                                     "gain": g["gain"], "personalised": metrics["personalised"],
                                     "subjects": metrics["n_subjects"]}
            row["seconds"] = metrics.get("seconds")
        else:  # evaluate
            part = metrics["partition"]
            for run, res in metrics["runs"].items():
                for t, m in _per_target(res, s.targets).items():
                    row["targets"][f"{run}:{t}"] = {part: _scalar(m)}
            row["seconds"] = metrics.get("seconds")
        rows.append(row)
    return {"recipe": recipe.name, "source": recipe.source, "data": str(data), "steps": rows}


def table_rows(results: dict) -> list[list[str]]:
    """The final table, one row per step and target: step, kind, target, devel CCC (± std over
    seeds, and AUROC for binary targets), test CCC, note. No timings: an interrupted and resumed
    pipeline prints the same table as an uninterrupted one."""

    def fmt(m: dict | None, seeds: list[float] | None = None) -> str:
        if not m or "ccc" not in m:
            return ""
        text = f"{m['ccc']:.4f}"
        if seeds and len(seeds) > 1:
            text += f" (seeds {np.mean(seeds):.4f} ± {np.std(seeds):.4f})"
        if "auroc" in m and m["auroc"] is not None and math.isfinite(m["auroc"]):
            text += f", AUROC {m['auroc']:.4f}"
        return text

    rows = []
    for row in results["steps"]:
        for t, v in row["targets"].items():
            note = ""
            if row["kind"] == "personalise":
                note = (f"general {v['general']:.4f}, gain {v['gain']:+.4f}; "
                        f"{v['personalised']}/{v['subjects']} subjects personalised")
            elif row["kind"] == "final":
                note = "train + devel; no devel score"
            rows.append([row["step"], row["kind"], t, fmt(v.get("devel"), v.get("devel_seeds")),
                         fmt(v.get("test")), note])
    return rows
