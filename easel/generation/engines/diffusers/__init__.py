"""The diffusers engine: configured pipelines loaded once per process, run in a thread.

One module per job: models.py (the catalogue; where weights, device and dtype come from),
families.py (what differs per model family), prepare.py (a request resolved against its
model), loading.py (pipelines from disk, offload, compile warm-up), calls.py (an
EngineCall as one batched pipeline call), running.py (the call with progress, previews
and cancel), outputs.py (images back per request), compilation.py and previews.py;
engine.py composes them. Nothing here imports torch at module level: the gateway builds
the generation app (for its docs) without the ML stack.
"""

from easel.generation.engines.diffusers.engine import DiffusersEngine

__all__ = ["DiffusersEngine"]
