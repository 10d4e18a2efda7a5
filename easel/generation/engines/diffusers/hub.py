"""Whether the model hub can be reached, found out once rather than by every load.

Without a network, `from_pretrained` of a hub id spends many seconds in retries (logging
each one) before it falls back to the local cache; a request naming that model would wait
as long every time. Here one TCP connect with a short timeout decides, and the verdict is
kept for a while: a model loads from the local cache alone while the hub is unreachable,
and a model that is not cached is refused at once with one message saying what to do.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

Connect = Callable[[tuple[str, int], float], object]


def _connect(address: tuple[str, int], timeout: float) -> object:
    with socket.create_connection(address, timeout=timeout):
        return None


class HubReach:
    """`reachable()` probes the hub endpoint at most once per `recheck_s` (blocking: call it
    from the loading thread); `known_unreachable()` answers from the last verdict alone."""

    def __init__(
        self,
        *,
        endpoint: str,
        timeout_s: float,
        recheck_s: float,
        offline: bool = False,
        connect: Connect = _connect,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.recheck_s = recheck_s
        self.offline = offline  # HF_HUB_OFFLINE: the user said so; never probe
        self.connect = connect
        self.clock = clock
        self._verdict: tuple[bool, float] | None = None  # (reachable, when)
        self._lock = threading.Lock()

    @classmethod
    def from_hub_settings(cls, *, timeout_s: float, recheck_s: float) -> HubReach:
        """The endpoint and offline switch huggingface_hub itself reads (HF_ENDPOINT,
        HF_HUB_OFFLINE), so the probe asks exactly what a download would."""
        from huggingface_hub import constants

        return cls(
            endpoint=constants.ENDPOINT,
            timeout_s=timeout_s,
            recheck_s=recheck_s,
            offline=constants.is_offline_mode(),
        )

    def reachable(self) -> bool:
        if self.offline:
            return False
        with self._lock:
            if self._fresh() is None:
                self._verdict = (self._probe(), self.clock())
            assert self._verdict is not None
            return self._verdict[0]

    @property
    def why_unreachable(self) -> str:
        if self.offline:
            return "HF_HUB_OFFLINE is set"
        return f"the hub ({self.endpoint}) is unreachable"

    def known_unreachable(self) -> bool:
        return self.offline or self._fresh() is False

    def _fresh(self) -> bool | None:
        if self._verdict is None or self.clock() - self._verdict[1] >= self.recheck_s:
            return None
        return self._verdict[0]

    def _probe(self) -> bool:
        url = urlsplit(self.endpoint)
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            self.connect((url.hostname or "", port), self.timeout_s)
        except OSError:  # no route, no DNS, refused, timed out: all "unreachable"
            return False
        return True


class ModelNotCached(Exception):
    """A hub model missing from the local cache while the hub is unreachable: an answer
    that stays true until the hub is back, so it is remembered, not retried."""


def not_cached_message(name: str, hub_id: str, why: str) -> str:
    """One line: what failed, and the ways out."""
    return (
        f"model {name!r} (hub id {hub_id!r}) is not in the local cache and {why}: "
        "download it where there is a network "
        f"(`hf download {hub_id}`) and copy the hub cache (HF_HOME) here; or put a "
        "diffusers model folder under MODELS_PATH and declare it, e.g. "
        'EASEL_GENERATION_MODELS=\'{"mine": {"source": "my-model", "family": "sd"}}\' '
        "EASEL_GENERATION_MODEL=mine; or check the pipeline with "
        "EASEL_GENERATION_MODEL=tiny-random (noise)"
    )
