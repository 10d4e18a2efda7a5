"""Bodies of the job endpoints that the manager's own types do not already describe: the
async request as one document, and the typed result of a done job."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from easel.core.generation_api import GeneratedImage, GenerationRequest, GenerationResult
from easel.jobs.manager import JobOptions


class AsyncGenerationRequest(GenerationRequest, JobOptions):
    """The body of `POST /api/generate/async`: a generation request (its rules apply) plus
    the job's `webhook` and `timeout`. The manager validates the two parts apart, with the
    same models; this one documents them together."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "prompt": "a lighthouse on a cliff at dusk, oil painting",
                    "width": 512,
                    "height": 512,
                    "steps": 20,
                    "seed": 42,
                    "webhook": {"url": "https://example.com/hooks/easel", "events": ["done"]},
                    "timeout": 300,
                }
            ]
        },
    )


class StoredImage(GeneratedImage):
    sha256: str = Field(description="The image's content hash; the key it is stored under.")


_SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
_RESULT_EXAMPLE = GenerationResult.model_json_schema()["examples"][0]


class JobResult(GenerationResult):
    """The result of a done job: the generation result, with the images read back."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_RESULT_EXAMPLE,
                    "task_id": "0f3c9a7d2b6e4f1a8c5d7e9b0a1c2d3e",
                    "images": [
                        {
                            **image,
                            "sha256": _SHA256,
                        }
                        for image in _RESULT_EXAMPLE["images"]
                    ],
                }
            ]
        }
    )

    task_id: str
    images: list[StoredImage]  # type: ignore[assignment]
