"""easel: a self-hostable backend for AI image generation and editing."""

__version__ = "0.1.0"
