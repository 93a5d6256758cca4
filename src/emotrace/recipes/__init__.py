"""Recipes: the published systems as YAML files, validated and resolved into pipeline steps.

A recipe (``emotrace recipes``, ``emotrace run NAME``) is a YAML file shipped in this package, or a
user's own file in the same format::

    name: muse2021-baseline                # metadata
    cite: Stappen et al. 2021              # the short citation
    paper: "L. Stappen, ... (2021): ..."   # the full citation
    task: continuous regression
    summary: one line
    substitutes: [what stands in for what the paper used and emotrace lacks]
    defaults: {features: [...], targets: [...]}   # optional: used when the command gives none
    run: {data: ..., model: ..., train: ...}      # ONE run: a RunConfig without features/targets
    # or
    steps:                                        # a pipeline of named steps
      unimodal: {kind: train, features: each, config: {model: ..., train: ...}}
      early:    {kind: train, features: all, config: ...}
      late:     {kind: fuse, inputs: [unimodal, early], method: rnn, config: {model:, train:}}
      personal: {kind: personalise, input: early, seeds: 10, win: 10, hop: 5}
      final:    {kind: final, input: early}
      scores:   {kind: evaluate, inputs: [late], partition: test}

``features: each`` is one train step per feature set the user gives (``NAME-<feature>``); a later
step naming ``NAME`` gets all of them. ``features: all`` (the default) early-fuses them; a list
names fixed feature sets. ``data.per_recording: all`` z-scores every feature set of the step
within each recording. A step names only earlier steps. ``run:`` is a pipeline of one train
step named ``run``.

This module validates (pydantic, unknown keys refused) and resolves; it runs nothing:
:mod:`emotrace.workflows.pipeline` executes the steps. Errors name the file, the step and the key.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from emotrace.config import MAX_SEED, FuseConfig, RunConfig, explain
from emotrace.errors import EmotraceError

#: step kinds and what each makes
KINDS = ("train", "fuse", "personalise", "final", "evaluate")
#: names a step may not take: the config sections that ``--set`` keys start with
RESERVED = ("data", "model", "train", "fusion")
#: which kinds of step each kind may read
READS = {"fuse": ("train", "fuse"), "evaluate": ("train", "fuse", "final"),
         "personalise": ("train",), "final": ("train",), "train": ()}
#: the step of a one-run recipe (``run:``)
RUN_STEP = "run"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Defaults(_Strict):
    features: list[str] = Field(default_factory=list, description="feature sets used when the "
                                "command line gives none")
    targets: list[str] = Field(default_factory=list, description="targets used when the command "
                               "line gives none")


class TrainStep(_Strict):
    """One ``emotrace train`` run (``config`` is a RunConfig fragment)."""

    kind: Literal["train"]
    features: Literal["all", "each"] | list[str] = Field(
        "all", description="all: the user's feature sets early-fused; each: one step per set; or "
        "a fixed list")
    targets: Literal["all", "each"] | list[str] | None = Field(
        None, description="all (the default): one model for all the user's targets; each: one "
        "model per target (NAME-<target>), as the MuSe papers trained; or a fixed list")
    config: dict = Field(default_factory=dict, description="data:, model:, train: (a RunConfig "
                         "without features and targets)")


class FuseStep(_Strict):
    """``emotrace fuse`` of earlier steps' runs (``config``: the fusion model's model:/train:)."""

    kind: Literal["fuse"]
    inputs: list[str] = Field(min_length=1)
    method: Literal["rnn", "weighted", "mean"] = "rnn"
    difficulty: bool = False
    difficulty_hidden: int = Field(16, ge=1, description="the difficulty auto-encoders' units")
    difficulty_layers: int = Field(1, ge=1, description="the difficulty auto-encoders' layers")
    win: int = Field(0, ge=0, description="rnn: the fusion model's training windows; 0 = whole "
                     "recordings")
    hop: int | None = Field(None, ge=1)
    config: dict = Field(default_factory=dict, description="model:, train: of the fusion model")


class PersonaliseStep(_Strict):
    """``emotrace personalise`` of an earlier train step (MuSe 2023 protocol)."""

    kind: Literal["personalise"]
    input: str
    partition: Literal["devel", "test"] = "devel"
    subject_train: str | float = "60s"
    subject_devel: str | float = "60s"
    seeds: int = Field(10, ge=1)
    seed: int = Field(0, ge=0, le=MAX_SEED)
    win: int = Field(10, ge=1)
    hop: int = Field(5, ge=1)
    epochs: int = Field(20, ge=1)
    patience: int = Field(5, ge=1)
    lr: float = Field(1e-3, gt=0)
    batch_size: int | None = Field(None, ge=1)


class FinalStep(_Strict):
    """``emotrace train --final --from STEP``: retrain on train + devel."""

    kind: Literal["final"]
    input: str
    epochs: int | None = Field(None, ge=1, description="default: the input's best epoch")


class EvaluateStep(_Strict):
    """``emotrace evaluate`` of earlier steps' runs on one partition."""

    kind: Literal["evaluate"]
    inputs: list[str] = Field(min_length=1)
    partition: Literal["devel", "test"] = "test"


STEP_MODELS: dict[str, type[_Strict]] = {"train": TrainStep, "fuse": FuseStep,
                                         "personalise": PersonaliseStep, "final": FinalStep,
                                         "evaluate": EvaluateStep}
Step = TrainStep | FuseStep | PersonaliseStep | FinalStep | EvaluateStep


class Recipe(_Strict):
    name: str = Field(min_length=1)
    cite: str = Field(min_length=1, description="the short citation (Author et al. YEAR)")
    paper: str = Field(min_length=1, description="the full citation")
    task: str = Field(min_length=1)
    summary: str = Field(min_length=1, description="one line")
    substitutes: list[str] = Field(default_factory=list)
    defaults: Defaults = Defaults()
    run: dict | None = None
    steps: dict[str, dict] | None = None


@dataclass
class LoadedRecipe:
    """A validated recipe: metadata, its steps in file order, where it came from."""

    meta: Recipe
    steps: dict[str, Step]
    source: str  # the file (a shipped recipe: its name and package path)
    raw: dict  # the YAML after --set, as written to OUT/recipe.yaml

    @property
    def name(self) -> str:
        return self.meta.name


# ------------------------------------------------------------------------------------------------
# finding recipes


def _shipped() -> dict[str, Any]:
    """Shipped recipe name -> its file in the package (``importlib.resources``)."""
    folder = resources.files(__name__)
    return {p.name[: -len(".yaml")]: p for p in folder.iterdir() if p.name.endswith(".yaml")}


def names() -> list[str]:
    """The names of the shipped recipes."""
    return sorted(_shipped())


def text_of(recipe: str | Path) -> tuple[str, str]:
    """``(source, YAML text)`` of a shipped recipe name or a user's recipe file."""
    shipped = _shipped()
    if str(recipe) in shipped:
        return f"{recipe} (emotrace/recipes/{recipe}.yaml)", shipped[str(recipe)].read_text(
            encoding="utf-8")
    path = Path(recipe)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise EmotraceError(f"{path}: recipe file not found. Check the path, or pass one of "
                                f"the shipped recipes: {', '.join(names())}.")
        try:
            return str(path), path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise EmotraceError(f"{path}: not UTF-8 text (byte {e.start}). Save the file as "
                                f"UTF-8.") from None
    raise EmotraceError(f"{recipe!r}: unknown recipe. The shipped recipes are: "
                        f"{', '.join(names())} (`emotrace recipes` lists them); or pass a path to "
                        f"your own recipe file (.yaml).")


def _parse(source: str, text: str) -> dict:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark else ""
        raise EmotraceError(f"{source}{where}: not valid YAML ({getattr(e, 'problem', e)}). Fix "
                            f"the syntax.") from None
    if isinstance(data, dict):  # YAML anchors share objects: --set on one step must not
        data = json.loads(json.dumps(data, default=str))  # change another
    if not isinstance(data, dict):
        raise EmotraceError(f"{source}: a recipe is a mapping with name:, paper:, task:, "
                            f"summary: and either run: or steps:.")
    return data


# ------------------------------------------------------------------------------------------------
# validation


def _check_train_config(config: dict, where: str, features: list[str] | None = None,
                        targets: list[str] | None = None) -> RunConfig:
    """``config`` as a RunConfig, with ``features``/``targets`` filled in (placeholders when
    the user has not given any yet)."""
    cfg = copy.deepcopy(config)
    data = cfg.get("data")
    if data is not None and not isinstance(data, dict):
        raise EmotraceError(f"{where}: data: must be a mapping of data options.")
    data = dict(data or {})
    for key in ("features", "targets"):
        if key in data:
            raise EmotraceError(f"{where}: data.{key} is set by the step's `{key}:` and the "
                                f"command line (--features/--target), not in config:. Remove it.")
    feats = list(features) if features is not None else None
    per = data.get("per_recording")
    if per == "all":
        data["per_recording"] = feats if feats is not None else []
    elif feats is None and isinstance(per, list):
        feats = [str(f) for f in per]
    data["features"] = feats or ["<features>"]
    data["targets"] = list(targets) if targets else ["<target>"]
    cfg["data"] = data
    try:
        return RunConfig.model_validate(cfg)
    except ValidationError as e:
        raise EmotraceError(f"{where}: {explain(e)}") from None


def _check_fuse_config(config: dict, where: str) -> FuseConfig:
    unknown = [k for k in config if k not in ("model", "train")]
    if unknown:
        raise EmotraceError(f"{where}: unknown key 'config.{unknown[0]}'; a fuse step's config: "
                            f"has model: and train: (of the fusion model).")
    try:
        return FuseConfig.model_validate({**config, "runs": ["a", "b"]})
    except ValidationError as e:
        raise EmotraceError(f"{where}: config.{explain(e)}") from None


def _validate_step(name: str, raw: Any, source: str) -> Step:
    where = f"{source}: step {name!r}"
    if name in RESERVED:
        raise EmotraceError(f"{where}: a step may not be named {name!r} (the config sections "
                            f"{', '.join(RESERVED)} start --set keys). Rename the step.")
    if not isinstance(raw, dict):
        raise EmotraceError(f"{where}: a step is a mapping with kind: ({', '.join(KINDS)}) and "
                            f"its options.")
    kind = raw.get("kind")
    if kind not in STEP_MODELS:
        raise EmotraceError(f"{where}: kind {kind!r} is not a step kind; use one of "
                            f"{', '.join(KINDS)}.")
    try:
        step = STEP_MODELS[kind].model_validate(raw)
    except ValidationError as e:
        raise EmotraceError(f"{where} ({kind}): {explain(e)}") from None
    if isinstance(step, TrainStep):
        fixed = step.features if isinstance(step.features, list) else None
        _check_train_config(step.config, f"{where} (train), config", fixed,
                            step.targets if isinstance(step.targets, list) else None)
    elif isinstance(step, FuseStep):
        _check_fuse_config(step.config, f"{where} (fuse)")
        try:
            FuseConfig.model_validate({"runs": ["a", "b"], "win": step.win, "hop": step.hop})
        except ValidationError as e:
            raise EmotraceError(f"{where} (fuse): {explain(e)}") from None
        if step.difficulty and step.method == "mean":
            raise EmotraceError(f"{where} (fuse): difficulty: true needs method rnn or weighted "
                                f"(the plain mean has no parameters).")
    return step


def inputs_of(step: Step) -> list[str]:
    """The steps that ``step`` reads."""
    if isinstance(step, FuseStep | EvaluateStep):
        return list(step.inputs)
    if isinstance(step, PersonaliseStep | FinalStep):
        return [step.input]
    return []


def _check_graph(steps: dict[str, Step], source: str) -> None:
    """Every input names an earlier step; a later one is named as such, a cycle as a cycle."""
    order = list(steps)
    for i, (name, step) in enumerate(steps.items()):
        for dep in inputs_of(step):
            if dep not in steps:
                raise EmotraceError(f"{source}: step {name!r} names {dep!r}, which is not a step "
                                    f"of this recipe (its steps: {', '.join(order)}).")
            if dep == name:
                raise EmotraceError(f"{source}: step {name!r} names itself as an input (a "
                                    f"cycle). Name an earlier step.")
            if order.index(dep) > i:
                path = _cycle(steps, dep, name)
                if path:
                    raise EmotraceError(f"{source}: steps form a cycle "
                                        f"({' -> '.join([name, *path])}). A step may only read "
                                        f"steps written above it.")
                raise EmotraceError(f"{source}: step {name!r} names {dep!r}, which comes later "
                                    f"in the file. A step may only read steps written above it; "
                                    f"move {dep!r} up.")


def _cycle(steps: dict[str, Step], start: str, goal: str) -> list[str]:
    """A path of inputs from ``start`` back to ``goal``, or [] when there is none."""
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        if node == goal:
            return path
        if node in seen or node not in steps:
            continue
        seen.add(node)
        stack += [(d, [*path, d]) for d in inputs_of(steps[node])]
    return []


def validate(raw: dict, source: str) -> LoadedRecipe:
    """Check a recipe's metadata, steps and graph; errors name the file, the step and the key."""
    try:
        meta = Recipe.model_validate(raw)
    except ValidationError as e:
        raise EmotraceError(f"{source}: {explain(e)}") from None
    if (meta.run is None) == (meta.steps is None):
        raise EmotraceError(f"{source}: a recipe has either run: (one training run) or steps: (a "
                            f"pipeline), not {'both' if meta.run is not None else 'neither'}.")
    raw_steps = meta.steps if meta.steps is not None else {
        RUN_STEP: {"kind": "train", "features": "all", "config": meta.run}}
    if not raw_steps:
        raise EmotraceError(f"{source}: steps: is empty. Add at least one step.")
    steps = {str(n): _validate_step(str(n), s, source) for n, s in raw_steps.items()}
    _check_graph(steps, source)
    return LoadedRecipe(meta, steps, source, raw)


def read(recipe: str | Path) -> tuple[str, dict]:
    """``(source, the recipe as a dict)`` of a shipped recipe name or a recipe file, unvalidated
    (for :func:`apply_set` and :func:`validate`)."""
    source, text = text_of(recipe)
    return source, _parse(source, text)


def load(recipe: str | Path, *, sets: list[str] | tuple[str, ...] = ()) -> LoadedRecipe:
    """Read, ``--set`` and validate a shipped recipe (by name) or a recipe file."""
    source, raw = read(recipe)
    validate(raw, source)  # the file itself first, so its own errors name the file alone
    for item in sets:
        raw = apply_set(raw, item, source)
    try:
        return validate(raw, source)
    except EmotraceError as e:
        raise EmotraceError(f"with --set {' '.join(sets)}: {e}") from None


# ------------------------------------------------------------------------------------------------
# --set key=value


def parse_set(item: str) -> tuple[str, Any]:
    """``"train.seeds=3"`` -> ``("train.seeds", 3)``: the value is a YAML scalar or list."""
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise EmotraceError(f"--set {item!r}: write KEY=VALUE, e.g. --set train.seeds=3 or "
                            f"--set late.train.epochs=10.")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        parsed = value
    return key, parsed


def _step_keys(kind: str) -> set[str]:
    """The dotted keys a step of ``kind`` has (section.field for its config, else its fields)."""
    from emotrace.config import DataConfig, ModelConfig, TrainConfig

    model = STEP_MODELS[kind]
    keys = {k for k in model.model_fields if k not in ("kind", "config")}
    if kind == "train":
        keys |= {f"data.{k}" for k in DataConfig.model_fields if k not in ("features", "targets")}
        keys |= {f"model.{k}" for k in ModelConfig.model_fields}
        keys |= {f"train.{k}" for k in TrainConfig.model_fields}
    elif kind == "fuse":
        keys |= {f"model.{k}" for k in ModelConfig.model_fields}
        keys |= {f"train.{k}" for k in TrainConfig.model_fields}
    return keys


def _put(step: dict, key: str, value: Any) -> None:
    if key.split(".")[0] in ("data", "model", "train"):
        section, fld = key.split(".", 1)
        config = step.setdefault("config", {})
        config.setdefault(section, {})[fld] = value
    else:
        step[key] = value


def apply_set(raw: dict, item: str, source: str) -> dict:
    """``raw`` with one ``--set KEY=VALUE`` applied: to every step that has KEY, or with
    ``STEP.KEY`` to that step only. An unknown key is an error naming it; values are checked
    when the recipe is validated after every ``--set``."""
    key, value = parse_set(item)
    out = copy.deepcopy(raw)
    if out.get("steps") is None and isinstance(out.get("run"), dict):
        steps = {RUN_STEP: {"kind": "train", "features": "all", "config": out["run"]}}
    else:
        steps = out.get("steps") or {}
    head, _, rest = key.partition(".")
    targets = [head] if head in steps and rest else list(steps)
    sub = rest if head in steps and rest else key
    hit = [n for n in targets if isinstance(steps[n], dict)
           and steps[n].get("kind") in STEP_MODELS and sub in _step_keys(steps[n]["kind"])]
    if not hit:
        where = f"step {head!r}" if head in steps and rest else "any step of the recipe"
        raise EmotraceError(f"--set {item}: {sub!r} is not an option of {where} ({source}). Use a "
                            f"dotted config key (data.win, model.hidden, train.seeds, ...), a step "
                            f"option (seeds, epochs, method, ...) or STEP.KEY for one step.")
    for n in hit:
        _put(steps[n], sub, value)
    if out.get("steps") is None and isinstance(out.get("run"), dict):
        out["run"] = steps[RUN_STEP]["config"]
    return out


# ------------------------------------------------------------------------------------------------
# resolution: the user's features and targets -> concrete steps


@dataclass
class Resolved:
    """One concrete step: its folder name, kind, input steps and everything it computes from
    (``spec``, JSON-able; a finished step whose spec differs is refused, never overwritten)."""

    name: str
    kind: str
    inputs: list[str]
    spec: dict
    group: str  # the recipe's step name (``NAME`` of ``NAME-<feature>``)
    targets: list[str] = field(default_factory=list)


def resolve(recipe: LoadedRecipe, *, features: list[str] | None,
            targets: list[str] | None) -> list[Resolved]:
    """Concrete steps in dependency order for the user's feature sets and targets.

    ``features: each`` makes ``NAME-<feature>`` steps, ``targets: each`` (with several targets)
    ``NAME[-<feature>]-<target>`` steps; a later step that reads runs of one target each is made
    once per target (``NAME-<target>``), reading that target's runs.
    """
    src = recipe.source
    feats = list(features or recipe.meta.defaults.features)
    tgts = list(targets or recipe.meta.defaults.targets)
    if not feats:
        raise EmotraceError(f"{src}: this recipe leaves the feature sets to you: pass --features "
                            f"F [F ...] (folders of the corpus's feature_segments/).")
    if not tgts:
        raise EmotraceError(f"{src}: this recipe leaves the targets to you: pass --target T "
                            f"[T ...] (folders of the corpus's label_segments/).")
    groups: dict[str, list[str]] = {}
    step_targets: dict[str, list[str]] = {}
    out: list[Resolved] = []
    for name, step in recipe.steps.items():
        where = f"{src}: step {name!r} ({step.kind})"
        if isinstance(step, TrainStep):
            sets = feats if step.features in ("all", "each") else list(step.features)
            parts = [[f] for f in sets] if step.features == "each" else [sets]
            if step.targets == "each":
                tparts = [[t] for t in tgts]
            else:
                tparts = [list(step.targets) if isinstance(step.targets, list) else tgts]
            groups[name] = []
            for fs in parts:
                for ts in tparts:
                    rname = f"{name}-{fs[0]}" if step.features == "each" else name
                    rname += f"-{ts[0]}" if len(tparts) > 1 else ""
                    cfg = _check_train_config(step.config, f"{where}, config", fs, ts)
                    groups[name].append(rname)
                    step_targets[rname] = ts
                    out.append(Resolved(rname, "train", [], {"config": cfg.outcome()}, name, ts))
            continue
        deps = [r for n in inputs_of(step) for r in groups[n]]  # a group: all its steps
        kinds = {r.name: r.kind for r in out}
        bad = [d for d in deps if kinds[d] not in READS[step.kind]]
        if bad:
            raise EmotraceError(f"{where}: reads {bad[0]!r}, a {kinds[bad[0]]} step; a "
                                f"{step.kind} step reads the runs of "
                                f"{' or '.join(READS[step.kind])} steps.")
        if isinstance(step, EvaluateStep):  # scores each run on its own: any targets
            union = list(dict.fromkeys(t for d in deps for t in step_targets[d]))
            spec = step.model_dump(mode="json", exclude={"kind", "inputs"})
            groups[name], step_targets[name] = [name], union
            out.append(Resolved(name, step.kind, deps, spec, name, union))
            continue
        splits = _per_target_inputs(deps, step_targets, where)
        groups[name] = []
        for suffix, ds, ts in splits:
            rname = f"{name}-{suffix}" if suffix else name
            spec = _spec(step, ds, f"{src}: step {rname!r} ({step.kind})")
            groups[name].append(rname)
            step_targets[rname] = ts
            out.append(Resolved(rname, step.kind, ds, spec, name, ts))
    return out


def _per_target_inputs(deps: list[str], targets: dict[str, list[str]], where: str
                       ) -> list[tuple[str, list[str], list[str]]]:
    """``(suffix, inputs, targets)`` per concrete step: one step when the inputs predict the
    same targets, else one per target when each input predicts one."""
    kinds = {tuple(targets[d]) for d in deps}
    if len(kinds) == 1:
        return [("", deps, list(targets[deps[0]]))]
    if any(len(targets[d]) != 1 for d in deps):
        raise EmotraceError(f"{where}: reads runs of different targets "
                            f"({'; '.join(f'{d}: {targets[d]}' for d in deps)}). Read runs of the "
                            f"same targets, or one target each (targets: each).")
    by_target: dict[str, list[str]] = {}
    for d in deps:
        by_target.setdefault(targets[d][0], []).append(d)
    return [(t, ds, [t]) for t, ds in by_target.items()]


def _spec(step: Step, deps: list[str], where: str) -> dict:
    """What a fuse, personalise or final step computes from (besides its inputs)."""
    if isinstance(step, FuseStep):
        if len(deps) < 2:
            raise EmotraceError(f"{where}: fuses {deps}, but late fusion needs at least two "
                                f"runs. Name more steps, or a `features: each` step with "
                                f"several feature sets.")
        fc = _check_fuse_config(step.config, where)
        return {"method": step.method, "difficulty": step.difficulty,
                "difficulty_hidden": step.difficulty_hidden,
                "difficulty_layers": step.difficulty_layers,
                "win": step.win, "hop": step.hop,
                "config": {"model": fc.model.model_dump(mode="json"),
                           "train": {k: v for k, v in fc.train.model_dump(mode="json").items()
                                     if k not in ("threads", "jobs")}}}
    if len(deps) != 1:
        raise EmotraceError(f"{where}: input {step.input!r} is {len(deps)} runs "
                            f"({', '.join(deps)}); name one of them.")
    return step.model_dump(mode="json", exclude={"kind", "input"})
