"""Named ComfyUI workflows and their declared parameters.

A workflow is a ComfyUI API-format graph (`{node_id: {"class_type", "inputs", "_meta"}}`,
what ComfyUI's "Export (API)" writes) plus a declaration of the parameters a request may
set: name, type, default, bounds, and the node inputs each value is written into, named
by node id or by node title (`_meta.title`). The declaration lives in the file under the
key `"easel"` (taken out before the graph is sent), or beside it in `NAME.easel.json`, so an
exported graph can be replaced without touching its declaration.

Everything is checked when the folder is read: a target that names no node, a title that
names two, an input the node does not have. A broken file is reported (health, logs) and
left out; it never stops the service.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from easel.core.errors import InvalidInput
from easel.core.paths import public_path, public_text
from easel.generation.engines.base import SeedRange

log = logging.getLogger("easel.generation.comfyui")

EXAMPLES = Path(__file__).parent / "workflows"
DECLARATION_KEY = "easel"
SIDECAR_SUFFIX = ".easel.json"
# Names are looked up in a table, never joined to a path; the pattern still refuses
# anything that looks like one, so a name means the same thing everywhere.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
IMAGE_PARAMETERS = ("input_image", "mask_image")
# The shipped examples' `${checkpoint}` and `${inpaint_checkpoint}`.
DEFAULT_MODEL_FILES = {
    "checkpoint": "v1-5-pruned-emaonly.safetensors",
    "inpaint_checkpoint": "512-inpainting-ema.safetensors",
}
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")

Scalar = int | float | str | bool


class Target(BaseModel):
    """One node input a parameter is written into: by node id or by node title."""

    model_config = ConfigDict(extra="forbid")

    node: str | None = None
    title: str | None = None
    input: str

    @model_validator(mode="after")
    def _one_way_to_name_the_node(self) -> Target:
        if (self.node is None) == (self.title is None):
            raise ValueError("name the node by exactly one of `node` (id) or `title`")
        return self


class Parameter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["int", "float", "string", "bool", "image"]
    description: str = ""
    default: Scalar | None = None
    required: bool | None = Field(None, description="Default: required when no default.")
    min: float | None = None
    max: float | None = None
    multiple_of: int | None = Field(None, ge=1, description="int: rounded down, with a warning.")
    max_length: int | None = Field(None, ge=1)
    choices: list[Scalar] | None = None
    targets: list[Target] = Field(min_length=1)

    @property
    def is_required(self) -> bool:
        return self.default is None if self.required is None else self.required


class Declaration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = ""
    parameters: dict[str, Parameter]
    outputs: list[Target | str] | None = Field(
        None, description="Output node ids whose images are the result; default: all."
    )


@dataclass(frozen=True)
class Resolved:
    """A request's parameter values checked against a declaration, defaults applied."""

    values: dict[str, Scalar]
    warnings: tuple[str, ...] = ()


# parameter name -> the request field that carries it (`width`, `extra_params.strength`)
FieldOf = Callable[[str], str]


@dataclass(frozen=True)
class Workflow:
    name: str
    graph: dict[str, Any]
    declaration: Declaration
    source: str  # "example" (shipped) or "workflows_path"
    # parameter -> [(node id, input)], resolved from titles when the folder is read
    bindings: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    @property
    def parameters(self) -> dict[str, Parameter]:
        return self.declaration.parameters

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.declaration.description,
            "source": self.source,
            "parameters": {
                name: {
                    **param.model_dump(exclude_none=True, exclude={"targets", "required"}),
                    "required": param.is_required,
                    "targets": [{"node": node, "input": inp} for node, inp in self.bindings[name]],
                }
                for name, param in self.parameters.items()
            },
        }

    def seeds(self) -> SeedRange:
        """The seeds the workflow's `seed` declares, within those a request may send."""
        param = self.parameters.get("seed")
        full = SeedRange()
        if param is None:
            return full
        low = full.low if param.min is None else max(full.low, math.ceil(param.min))
        high = full.high if param.max is None else min(full.high, math.floor(param.max))
        return SeedRange(low, high) if low <= high else full

    def target_of(self, node: str, input_name: str) -> str | None:
        """The parameter written into (node, input), if any: to name it in errors."""
        for name, bound in self.bindings.items():
            if (node, input_name) in bound:
                return name
        return None

    def resolve(
        self,
        given: dict[str, Any],
        field_of: FieldOf,
        *,
        runtime: frozenset[str] = frozenset(),
    ) -> Resolved:
        """Check `given` against the declaration; apply defaults. Names in `runtime` are
        supplied later (the seed, uploaded images) and only checked for being declared."""
        problems: list[dict[str, str]] = []
        values: dict[str, Scalar] = {}
        warnings: list[str] = []
        for name, value in given.items():
            param = self.parameters.get(name)
            if param is None:
                problems.append(_problem(field_of(name), self._unknown(name)))
                continue
            try:
                values[name] = _check(name, param, value, warnings)
            except ValueError as exc:
                problems.append(_problem(field_of(name), str(exc)))
        for name, param in self.parameters.items():
            if name in values or name in runtime:
                continue
            if param.default is not None:
                values[name] = param.default
            elif param.is_required:
                problems.append(_problem(field_of(name), f"required by workflow {self.name!r}"))
        if problems:
            raise InvalidInput(
                "; ".join(f"{p['field']}: {p['message']}" for p in problems), details=problems
            )
        return Resolved(values=values, warnings=tuple(warnings))

    def _unknown(self, name: str) -> str:
        known = ", ".join(sorted(self.parameters)) or "none"
        return f"workflow {self.name!r} has no parameter {name!r}; it takes: {known}"

    def inject(self, values: dict[str, Any]) -> dict[str, Any]:
        """A copy of the graph with each value written into its declared node inputs."""
        graph = copy.deepcopy(self.graph)
        for name, value in values.items():
            for node, input_name in self.bindings.get(name, ()):
                graph[node]["inputs"][input_name] = value
        return graph

    def output_nodes(self) -> set[str] | None:
        if self.declaration.outputs is None:
            return None
        return {self._node_of(t) for t in self.declaration.outputs}

    def _node_of(self, target: Target | str) -> str:
        if isinstance(target, str):
            return target
        return _find_node(self.graph, target)


def _problem(field_name: str, message: str) -> dict[str, str]:
    return {"field": field_name, "message": message}


def _check_type(param: Parameter, value: Any) -> None:
    if param.type == "image":
        raise ValueError("an image: send it as input_image or mask_image")
    if param.type == "bool" and not isinstance(value, bool):
        raise ValueError("must be true or false")
    if param.type == "string":
        if not isinstance(value, str):
            raise ValueError("must be a string")
        if param.max_length is not None and len(value) > param.max_length:
            raise ValueError(f"at most {param.max_length} characters")
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if param.type == "int" and not (numeric and isinstance(value, int)):
        raise ValueError("must be an integer")
    if param.type == "float" and not numeric:
        raise ValueError("must be a number")


def _check(name: str, param: Parameter, value: Any, warnings: list[str]) -> Scalar:
    _check_type(param, value)
    if param.type == "bool":
        return bool(value)
    if param.choices is not None and value not in param.choices:
        raise ValueError(f"must be one of: {', '.join(map(str, param.choices))}")
    if param.min is not None and value < param.min:
        raise ValueError(f"at least {_plain(param.min)}")
    if param.max is not None and value > param.max:
        raise ValueError(f"at most {_plain(param.max)}")
    if param.type == "int" and param.multiple_of and value % param.multiple_of:
        rounded = max(param.multiple_of, value // param.multiple_of * param.multiple_of)
        warnings.append(f"{name} {value} rounded to {rounded} (multiples of {param.multiple_of})")
        return int(rounded)
    return float(value) if param.type == "float" else value


def _plain(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def _find_node(graph: dict[str, Any], target: Target) -> str:
    if target.node is not None:
        if target.node not in graph:
            raise ValueError(f"no node {target.node!r}")
        return target.node
    matches = [i for i, node in graph.items() if node.get("_meta", {}).get("title") == target.title]
    if len(matches) != 1:
        found = "no node" if not matches else f"{len(matches)} nodes"
        raise ValueError(f"{found} titled {target.title!r}")
    return matches[0]


def _substitute(value: Scalar | None, model_files: dict[str, str]) -> Scalar | None:
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        if match.group(1) not in model_files:
            raise ValueError(f"unknown model file placeholder {match.group(0)}")
        return model_files[match.group(1)]

    return _PLACEHOLDER.sub(replace, value)


def build_workflow(
    name: str, raw: dict[str, Any], declaration: Any, source: str, model_files: dict[str, str]
) -> Workflow:
    """A checked Workflow; raises ValueError naming what is wrong."""
    if not NAME.match(name):
        raise ValueError(f"invalid workflow name {name!r} (letters, digits, - and _)")
    graph = {k: v for k, v in raw.items() if k != DECLARATION_KEY}
    if not graph or not all(
        isinstance(node, dict) and "class_type" in node and isinstance(node.get("inputs"), dict)
        for node in graph.values()
    ):
        raise ValueError("not a ComfyUI API-format graph ({id: {class_type, inputs}})")
    try:
        decl = Declaration.model_validate(declaration)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ValueError(f"bad declaration: {where}: {first['msg']}") from None
    bindings: dict[str, list[tuple[str, str]]] = {}
    for param_name, param in decl.parameters.items():
        if param.type == "image" and param_name not in IMAGE_PARAMETERS:
            raise ValueError(f"image parameter {param_name!r} must be one of {IMAGE_PARAMETERS}")
        param.default = _substitute(param.default, model_files)
        bound = []
        for target in param.targets:
            node = _find_node(graph, target)
            if target.input not in graph[node]["inputs"]:
                raise ValueError(
                    f"parameter {param_name!r}: node {node} ({graph[node]['class_type']}) "
                    f"has no input {target.input!r}"
                )
            bound.append((node, target.input))
        bindings[param_name] = bound
    workflow = Workflow(name, graph, decl, source, bindings)
    workflow.output_nodes()  # raises for outputs naming no node
    return workflow


@dataclass
class WorkflowCatalogue:
    """The workflows a service knows, by name, and the files it could not read."""

    workflows: dict[str, Workflow] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, folders: list[Path], model_files: dict[str, str]) -> WorkflowCatalogue:
        """Read every folder in order; a later folder's workflow replaces an earlier one."""
        catalogue = cls()
        for folder in folders:
            if not folder.is_dir():
                continue
            origin = "example" if folder == EXAMPLES else "workflows_path"
            # Health shows these errors: the files by their folder, not where it lies.
            shown = {"EXAMPLES" if folder == EXAMPLES else "WORKFLOWS_PATH": folder}
            for path in sorted(folder.glob("*.json")):
                if path.name.endswith(SIDECAR_SUFFIX):
                    continue
                name = path.stem
                try:
                    workflow = _read(path, origin, model_files)
                except (OSError, ValueError) as exc:
                    catalogue.errors[name] = (
                        f"{public_path(path, shown)}: {public_text(str(exc), shown)}"
                    )
                    catalogue.workflows.pop(name, None)
                    log.error("workflow %s left out: %s", path, exc)
                    continue
                catalogue.workflows[name] = workflow
                catalogue.errors.pop(name, None)
        return catalogue

    def get(self, name: str, field_name: str) -> Workflow:
        if not NAME.match(name):
            raise InvalidInput.field(field_name, f"invalid workflow name {name!r}")
        workflow = self.workflows.get(name)
        if workflow is None:
            known = ", ".join(sorted(self.workflows)) or "none"
            raise InvalidInput.field(field_name, f"unknown workflow {name!r}; known: {known}")
        return workflow


def _read(path: Path, origin: str, model_files: dict[str, str]) -> Workflow:
    raw = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ValueError("not a JSON object")
    sidecar = path.with_name(path.stem + SIDECAR_SUFFIX)
    if sidecar.exists():
        if DECLARATION_KEY in raw:
            raise ValueError(f"declared twice: in the file and in {sidecar.name}")
        declaration = json.loads(sidecar.read_text(encoding="utf-8"))
    elif DECLARATION_KEY in raw:
        declaration = raw[DECLARATION_KEY]
    else:
        raise ValueError(f"no declaration: add an {DECLARATION_KEY!r} key or {sidecar.name}")
    return build_workflow(path.stem, raw, declaration, origin, model_files)
