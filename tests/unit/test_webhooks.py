"""Callback signatures: HMAC-SHA256 over timestamp and body."""

from __future__ import annotations

from shared.webhooks import signature, signature_valid


def test_the_signature_covers_timestamp_body_and_secret() -> None:
    given = signature("s3cret", "1700000000", b'{"a":1}')
    assert signature_valid("s3cret", "1700000000", b'{"a":1}', "sha256=" + given)
    assert signature_valid("s3cret", "1700000000", b'{"a":1}', given)
    assert not signature_valid("s3cret", "1700000001", b'{"a":1}', given)
    assert not signature_valid("s3cret", "1700000000", b'{"a":2}', given)
    assert not signature_valid("other", "1700000000", b'{"a":1}', given)
