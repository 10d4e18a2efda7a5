"""Server paths as a client may see them: by the configured folder they lie in
(`MODELS_PATH/mine/unet`), never absolute. Error messages and health are public; where a
server keeps its files is not the client's business (logs keep the full paths)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path


def public_text(text: str, folders: Mapping[str, Path]) -> str:
    """`text` with each folder's absolute path (and what lies under it) named by its label;
    the deepest folder first, so a folder inside another keeps its own label."""
    ordered = sorted(
        ((label, str(Path(folder).expanduser().resolve())) for label, folder in folders.items()),
        key=lambda pair: len(pair[1]),
        reverse=True,
    )
    for label, absolute in ordered:
        if absolute == "/":
            continue
        # The folder itself, or a path under it: not a sibling sharing its prefix.
        text = re.sub(re.escape(absolute) + r"(?=[/\\'\"\s,;:)\]]|$)", label, text)
    return text


def public_path(path: Path, folders: Mapping[str, Path]) -> str:
    """`path` under the folder it lies in (`MODELS_PATH/x.pt`), else its name alone."""
    resolved = Path(path).expanduser().resolve()
    for label, folder in folders.items():
        root = Path(folder).expanduser().resolve()
        if resolved.is_relative_to(root):
            relative = resolved.relative_to(root).as_posix()
            return label if relative == "." else f"{label}/{relative}"
    return resolved.name
