"""ComfyUI's refusals and failures, translated into easel's errors at this seam."""

from __future__ import annotations

from typing import Any

from easel.core.errors import BadGateway, InvalidInput
from easel.generation.engines.comfyui.client import PromptRejected
from easel.generation.engines.comfyui.workflows import FieldOf, Workflow


class WorkflowFailed(BadGateway):
    """ComfyUI accepted the prompt and then failed running it (`execution_error`)."""

    code = "workflow_failed"


def rejection(rejected: PromptRejected, workflow: Workflow, field_of: FieldOf) -> InvalidInput:
    """A 400 from `POST /prompt` as a 422 naming the node and input (and the request field
    declared to write into it, if any)."""
    body = rejected.body
    details: list[dict[str, Any]] = []
    node_errors = body.get("node_errors") or {}
    for node_id, node in node_errors.items() if isinstance(node_errors, dict) else ():
        class_type = node.get("class_type", "?")
        for error in node.get("errors") or []:
            input_name = (error.get("extra_info") or {}).get("input_name")
            param = workflow.target_of(node_id, input_name) if input_name else None
            where = f"node {node_id} ({class_type})"
            if input_name:
                where += f" input {input_name!r}"
            text = str(error.get("message", "invalid"))
            if error.get("details") and str(error["details"]) not in text:
                text += f": {error['details']}"
            details.append(
                {
                    "field": field_of(param)
                    if param
                    else f"workflow.{node_id}" + (f".{input_name}" if input_name else ""),
                    "message": f"ComfyUI rejected {where}: {text}",
                    "node": node_id,
                    "input": input_name,
                    "type": error.get("type"),
                }
            )
    if not details:
        top: dict[str, Any] = body["error"] if isinstance(body.get("error"), dict) else {}
        node_id = (top.get("extra_info") or {}).get("node_id")
        details.append(
            {
                "field": f"workflow.{node_id}" if node_id else "workflow",
                "message": f"ComfyUI rejected workflow {workflow.name!r}: "
                + str(top.get("message") or body),
                "node": node_id,
                "input": None,
                "type": top.get("type"),
            }
        )
    return InvalidInput("; ".join(d["message"] for d in details), details=details)


def execution_failure(data: dict[str, Any], prompt_id: str) -> WorkflowFailed:
    """An `execution_error` (websocket or history) as a failed result with ComfyUI's message."""
    message = str(data.get("exception_message", "")).strip() or "no message"
    node = f"node {data.get('node_id')} ({data.get('node_type')})"
    return WorkflowFailed(
        f"ComfyUI failed running {node}: {message}",
        details={
            "prompt_id": prompt_id,
            "node": data.get("node_id"),
            "node_type": data.get("node_type"),
            "exception_type": data.get("exception_type"),
        },
    )
