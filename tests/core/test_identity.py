import pytest

from easel.core.identity import ALL_SCOPES, ANONYMOUS, ApiScope, Caller, current_caller
from easel.core.internal_auth import (
    INTERNAL_HEADER,
    credential_is_valid,
    internal_credential,
    outbound_headers,
)


def test_a_caller_survives_its_header() -> None:
    caller = Caller("alice", frozenset({ApiScope.JOBS}), max_concurrent_jobs=3)
    assert Caller.from_header(caller.to_header()) == Caller(
        "alice", frozenset({ApiScope.JOBS}), max_concurrent_jobs=3
    )


@pytest.mark.parametrize(
    "value",
    [
        "",
        "{",
        "[]",
        '{"name": "a"}',
        '{"name": "", "scopes": []}',
        '{"name": "a", "scopes": ["x"]}',
    ],
)
def test_a_header_this_code_did_not_write_is_refused(value: str) -> None:
    with pytest.raises(ValueError):
        Caller.from_header(value)


def test_without_a_gateway_the_caller_is_the_local_operator() -> None:
    assert current_caller().name == ANONYMOUS
    assert current_caller().scopes == ALL_SCOPES


def test_a_credential_is_valid_only_for_its_token_caller_and_time() -> None:
    header = Caller("alice").to_header()
    credential = internal_credential("s3cret", header, now=1000)
    assert credential_is_valid("s3cret", credential, header, max_age=60, now=1030)
    assert not credential_is_valid("other", credential, header, max_age=60, now=1030)
    assert not credential_is_valid("s3cret", credential, Caller("bob").to_header(), max_age=60)
    assert not credential_is_valid("s3cret", credential, header, max_age=60, now=1100)
    assert not credential_is_valid("s3cret", "s3cret", header, max_age=60, now=1000)
    assert not credential_is_valid("s3cret", None, header, max_age=60, now=1000)
    assert "s3cret" not in credential


def test_outbound_headers_carry_a_credential_only_with_a_token() -> None:
    assert INTERNAL_HEADER not in outbound_headers(None, Caller("alice"))
    headers = outbound_headers("tok", Caller("alice"))
    assert credential_is_valid(
        "tok", headers[INTERNAL_HEADER], headers["x-easel-caller"], max_age=60
    )
