"""Generation engines, chosen by `GENERATION_ENGINE`: diffusers (in-process) or comfyui."""
