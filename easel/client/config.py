"""What both clients share before any I/O: where the server is, the key, timeouts and
retries; how a `Call` becomes an `httpx.Request`, and how an answer is checked."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx

from easel import __version__
from easel.client.call import Call
from easel.client.errors import ApiError, error_from_response
from easel.client.retrying import retry_policy

DEFAULT_URL = "http://127.0.0.1:8000"
# Generation on a real model takes a while: a generous read, a short connect.
DEFAULT_TIMEOUT = httpx.Timeout(300.0, connect=10.0)
MAX_RETRY_WAIT = 30.0
EVENT_STREAM = "text/event-stream"

Http = httpx.Client | httpx.AsyncClient
H = TypeVar("H", httpx.Client, httpx.AsyncClient)
X = TypeVar("X", httpx.BaseTransport, httpx.AsyncBaseTransport)


@dataclass(frozen=True)
class ClientConfig:
    base_url: str
    api_key: str | None
    timeout: httpx.Timeout
    retries: int
    max_retry_wait: float

    @classmethod
    def of(
        cls,
        base_url: str,
        api_key: str | None,
        timeout: float | httpx.Timeout | None,
        retries: int,
        max_retry_wait: float,
    ) -> ClientConfig:
        if retries < 0:
            raise ValueError("retries must be 0 or more")
        if timeout is None:
            timeout = DEFAULT_TIMEOUT
        elif not isinstance(timeout, httpx.Timeout):
            timeout = httpx.Timeout(timeout)
        return cls(base_url.rstrip("/"), api_key, timeout, retries, max_retry_wait)

    def headers(self) -> dict[str, str]:
        headers = {"User-Agent": f"easel-client/{__version__}"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def retry_policy(self) -> dict[str, Any]:
        return retry_policy(self.retries, max_wait=self.max_retry_wait)

    def request(
        self,
        http: Http,
        call: Call[Any],
        *,
        stream: bool = False,
        read_timeout: float | None = None,
    ) -> httpx.Request:
        """The request of `call` against `base_url` (whatever base the http client has),
        with the key; a stream's asks for events and may read for `read_timeout` only."""
        headers = {**self.headers(), **call.headers}
        if stream:
            headers["Accept"] = EVENT_STREAM
        timeout = self.timeout
        if read_timeout is not None:
            timeout = httpx.Timeout(**{**timeout.as_dict(), "read": read_timeout})
        return http.build_request(
            call.method,
            self.base_url + call.path,
            json=call.json(),
            params=call.query(),
            headers=headers,
            timeout=timeout,
        )


def failure(response: httpx.Response) -> ApiError | None:
    """The error of an answer (its body read already), or None for a success."""
    return error_from_response(response) if response.is_error else None


class ClientBase(ABC, Generic[H, X]):
    """The options both clients take (see `Client`) and the httpx client they send with."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        retries: int = 3,
        max_retry_wait: float = MAX_RETRY_WAIT,
        transport: X | None = None,
        httpx_client: H | None = None,
    ) -> None:
        self._config = ClientConfig.of(base_url, api_key, timeout, retries, max_retry_wait)
        self._owns_http = httpx_client is None
        self._http: H = httpx_client or self._open(self._config.timeout, transport)

    @staticmethod
    @abstractmethod
    def _open(timeout: httpx.Timeout, transport: X | None) -> H:
        """The httpx client of this kind (sync or async) the client owns."""

    @property
    def base_url(self) -> str:
        return self._config.base_url
