"""Workflow files and declarations: loading, checks, validation, injection (no server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from easel.core.errors import InvalidInput
from easel.generation.engines.comfyui.workflows import (
    DEFAULT_MODEL_FILES,
    EXAMPLES,
    WorkflowCatalogue,
)
from tests.generation.comfyui.conftest import INVERT, write_workflows


def field_of(name: str) -> str:
    return f"extra_params.{name}"


def load(folder: Path, *folders: Path) -> WorkflowCatalogue:
    return WorkflowCatalogue.load([folder, *folders], DEFAULT_MODEL_FILES)


def test_shipped_examples_load_and_reference_configurable_model_files(tmp_path: Path) -> None:
    catalogue = WorkflowCatalogue.load([EXAMPLES], {**DEFAULT_MODEL_FILES, "checkpoint": "my.ckpt"})
    assert catalogue.errors == {}
    assert set(catalogue.workflows) == {"text-to-image", "image-to-image", "inpaint"}
    t2i = catalogue.workflows["text-to-image"]
    assert t2i.parameters["checkpoint"].default == "my.ckpt"
    inpaint = catalogue.workflows["inpaint"].describe()["parameters"]
    assert inpaint["checkpoint"]["default"] == DEFAULT_MODEL_FILES["inpaint_checkpoint"]
    assert inpaint["mask_image"] == {
        "type": "image", "description": "", "required": True,
        "targets": [{"node": "11", "input": "image"}],
    }  # fmt: skip


def test_sidecar_declaration_and_titles_resolve_to_node_ids(tmp_path: Path) -> None:
    catalogue = load(write_workflows(tmp_path))
    invert = catalogue.workflows["invert"]
    assert invert.bindings == {
        "width": [("1", "width")], "height": [("1", "height")], "color": [("1", "color")]
    }  # fmt: skip
    assert "easel" not in invert.graph
    assert "missing-node" in catalogue.workflows  # checked by ComfyUI, not here


def test_a_later_folder_overrides_an_example_of_the_same_name(tmp_path: Path) -> None:
    (tmp_path / "inpaint.json").write_text(json.dumps({**INVERT, "easel": {"parameters": {}}}))
    catalogue = load(EXAMPLES, tmp_path)
    assert catalogue.workflows["inpaint"].source == "workflows_path"
    assert catalogue.workflows["text-to-image"].source == "example"


@pytest.mark.parametrize(
    ("declaration", "problem"),
    [
        ({"parameters": {"w": {"type": "int", "targets": [{"title": "Nope", "input": "width"}]}}},
         "no node titled 'Nope'"),
        ({"parameters": {"w": {"type": "int", "targets": [{"node": "1", "input": "wdth"}]}}},
         "has no input 'wdth'"),
        ({"parameters": {"w": {"type": "int", "targets": [{"node": "9", "input": "width"}]}}},
         "no node '9'"),
        ({"parameters": {"w": {"type": "int", "targets": [{"node": "1", "title": "Canvas",
                                                            "input": "width"}]}}},
         "exactly one of"),
        ({"parameters": {"w": {"type": "image", "targets": [{"node": "1", "input": "width"}]}}},
         "must be one of"),
        ({"parameters": {"w": {"type": "string", "default": "${nope}",
                               "targets": [{"node": "1", "input": "width"}]}}},
         "unknown model file placeholder"),
        ({"parameters": {}, "surprise": 1}, "bad declaration"),
    ],
)  # fmt: skip
def test_broken_declarations_are_reported_not_loaded(
    tmp_path: Path, declaration: dict[str, object], problem: str
) -> None:
    graph = {**INVERT, "4": {"class_type": "EmptyImage", "_meta": {"title": "Canvas"},
                             "inputs": {"width": 1}}}  # fmt: skip
    if "Canvas" not in json.dumps(declaration):
        graph.pop("4")
    (tmp_path / "bad.json").write_text(json.dumps({**graph, "easel": declaration}))
    catalogue = load(tmp_path)
    assert "bad" not in catalogue.workflows
    assert problem in catalogue.errors["bad"]


def test_files_that_are_not_workflows_are_reported(tmp_path: Path) -> None:
    (tmp_path / "nodecl.json").write_text(json.dumps(INVERT))
    (tmp_path / "notjson.json").write_text("{")
    (tmp_path / "bad name.json").write_text(json.dumps({**INVERT, "easel": {"parameters": {}}}))
    (tmp_path / "twice.json").write_text(json.dumps({**INVERT, "easel": {"parameters": {}}}))
    (tmp_path / "twice.easel.json").write_text(json.dumps({"parameters": {}}))
    catalogue = load(tmp_path)
    assert catalogue.workflows == {}
    assert "no declaration" in catalogue.errors["nodecl"]
    assert "invalid workflow name" in catalogue.errors["bad name"]
    assert "declared twice" in catalogue.errors["twice"]
    assert set(catalogue.errors) == {"nodecl", "notjson", "bad name", "twice"}


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b", "..", "", "x" * 65, "inv.ert"])
def test_workflow_names_are_validated(tmp_path: Path, name: str) -> None:
    catalogue = load(write_workflows(tmp_path))
    with pytest.raises(InvalidInput) as caught:
        catalogue.get(name, "model")
    assert caught.value.details[0]["field"] == "model"
    assert "invalid workflow name" in caught.value.message


def test_values_are_checked_against_the_declaration() -> None:
    t2i = WorkflowCatalogue.load([EXAMPLES], DEFAULT_MODEL_FILES).workflows["text-to-image"]
    with pytest.raises(InvalidInput) as caught:
        t2i.resolve(
            {"prompt": "x", "steps": 0, "guidance_scale": "high", "sampler_name": "magic",
             "wat": 1, "checkpoint": True},
            field_of,
        )  # fmt: skip
    fields = {d["field"]: d["message"] for d in caught.value.details}
    assert fields == {
        "extra_params.steps": "at least 1",
        "extra_params.guidance_scale": "must be a number",
        "extra_params.sampler_name": fields["extra_params.sampler_name"],
        "extra_params.wat": fields["extra_params.wat"],
        "extra_params.checkpoint": "must be a string",
    }
    assert fields["extra_params.sampler_name"].startswith("must be one of: euler")
    assert "has no parameter 'wat'" in fields["extra_params.wat"]
    with pytest.raises(InvalidInput, match="required by workflow 'text-to-image'"):
        t2i.resolve({}, field_of)


def test_defaults_rounding_and_injection() -> None:
    t2i = WorkflowCatalogue.load([EXAMPLES], DEFAULT_MODEL_FILES).workflows["text-to-image"]
    resolved = t2i.resolve({"prompt": "a fox", "width": 300}, field_of, runtime=frozenset({"seed"}))
    assert resolved.values["width"] == 296
    assert resolved.warnings == ("width 300 rounded to 296 (multiples of 8)",)
    assert resolved.values["steps"] == 20 and "seed" not in resolved.values
    graph = t2i.inject({**resolved.values, "seed": 7})
    assert graph["6"]["inputs"]["text"] == "a fox"
    assert graph["5"]["inputs"]["width"] == 296
    assert graph["3"]["inputs"]["seed"] == 7
    assert graph["4"]["inputs"]["ckpt_name"] == DEFAULT_MODEL_FILES["checkpoint"]
    assert t2i.graph["6"]["inputs"]["text"] == ""  # the loaded graph is untouched
