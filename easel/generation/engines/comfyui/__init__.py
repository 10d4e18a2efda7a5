"""The ComfyUI engine: named workflows run on a ComfyUI server over HTTP + WebSocket.

client.py (the server's protocol), workflows.py (files, declarations, validation,
injection), run.py (one call: queue, follow, cancel), engine.py (the Engine).
"""

from easel.generation.engines.comfyui.engine import ComfyUIEngine

__all__ = ["ComfyUIEngine"]
