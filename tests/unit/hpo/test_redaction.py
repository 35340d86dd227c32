"""One redactor for storage and tracking URLs and for messages: passwords SQLAlchemy accepts
(`/ ? # :` unencoded, anything percent-encoded, `?password=`) never come out, a URL without
a secret comes out unchanged, a redacted URL is recognised as one, and nothing raises."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataaug_multi_both.errors import StudyStorageError
from dataaug_multi_both.hpo.storage import (
    STORAGE_ENV,
    is_redacted,
    open_storage,
    redact_url,
    resolve_storage_url,
)
from dataaug_multi_both.redaction import (
    REDACTED,
    redact_text,
    sqlalchemy_misreads,
    url_secrets,
)
from dataaug_multi_both.tracking.retry import redact

# (URL, its secret, the redacted URL), checked by hand against SQLAlchemy's reading
SECRET_URLS = [
    (
        "postgresql://alice:p/a?s#s:rd@db:5432/optuna",  # / ? # : unencoded, as SQLAlchemy allows
        "p/a?s#s:rd",
        "postgresql://alice:***@db:5432/optuna",
    ),
    (
        "postgresql://alice:p%2Fa%3Fs%23s%40w%3Ard@db:5432/optuna",  # all percent-encoded
        "p%2Fa%3Fs%23s%40w%3Ard",
        "postgresql://alice:***@db:5432/optuna",
    ),
    (
        "postgresql://alice:p/a?s#s%40w:rd@db:5432/optuna",  # only the @ encoded
        "p/a?s#s%40w:rd",
        "postgresql://alice:***@db:5432/optuna",
    ),
    (
        "postgresql+psycopg2://alice:Pa55-w0rd@db/optuna",
        "Pa55-w0rd",
        "postgresql+psycopg2://alice:***@db/optuna",
    ),
    (
        "postgresql://alice@db/optuna?password=hunter22&sslmode=require",
        "hunter22",
        "postgresql://alice@db/optuna?password=***&sslmode=require",
    ),
    (
        "postgresql://db/optuna?user=alice&PassWord=hun%26ter22",
        "hun%26ter22",
        "postgresql://db/optuna?user=alice&PassWord=***",
    ),
    (
        "postgresql://alice@db/optuna?password=p%2Fa%3Fs%23s%40w%3Ard",
        "p%2Fa%3Fs%23s%40w%3Ard",
        "postgresql://alice@db/optuna?password=***",
    ),
    (
        "postgresql://alice:p@ss@w@db/optuna",  # an unencoded @: up to the LAST @ is secret
        "p@ss@w",
        "postgresql://alice:***@db/optuna",
    ),
    (
        "postgresql://alice:pw-secret@db/optuna?application_name=a@b",  # @ in a query value
        "pw-secret",
        "postgresql://alice:***@db/optuna?application_name=a%40b",
    ),
    (
        "postgresql://me@srv:pw-secret@db/optuna",  # Azure-style user name with an @
        "pw-secret",
        "postgresql://me%40srv:***@db/optuna",
    ),
    ("http://bob:hunter22@mlflow:5000/api?x=1", "hunter22", "http://bob:***@mlflow:5000/api?x=1"),
    (
        "https://mlflow.example/api?token=abc123xyz",
        "abc123xyz",
        "https://mlflow.example/api?token=***",
    ),
]

PLAIN_URLS = [
    "sqlite:////tmp/x@y/optuna_study.db",
    "sqlite:///relative.db?mode=ro",
    "postgresql://postgres@127.0.0.1:5432/optuna",
    "postgresql+psycopg2://db/optuna?sslmode=require",
    "http://127.0.0.1:5000",
    "https://host/users/@me",
    "file:///tmp/mlruns",
    "not a url at all",
    "",
]


@pytest.mark.parametrize(("url", "secret", "expected"), SECRET_URLS)
def test_the_password_never_survives(url: str, secret: str, expected: str) -> None:
    redacted = redact_url(url)
    assert redacted == expected
    assert secret not in redacted
    assert is_redacted(redacted) and not is_redacted(url)
    assert redact_url(redacted) == redacted  # idempotent
    assert secret not in redact_text(f"error talking to {url}: refused")


@pytest.mark.parametrize("url", PLAIN_URLS)
def test_a_url_without_a_secret_is_unchanged(url: str) -> None:
    assert redact_url(url) == url
    assert not is_redacted(url)


def test_an_old_study_json_redaction_is_still_recognised() -> None:
    assert is_redacted("postgresql://alice:***@db:5432/optuna")  # what earlier versions wrote
    assert is_redacted("postgresql://***@db:5432/optuna")  # redact_text's form


def test_messages_lose_userinfo_and_secret_pairs() -> None:
    assert redact("see https://u:p@host/x and http://h") == "see https://***@host/x and http://h"
    assert redact("clone https://ghp_token123@github.com/o/r") == (
        "clone https://***@github.com/o/r"
    )
    dsn = "invalid dsn: host=db password='se cret' user=u sslpassword=zz9 port=5"
    assert redact_text(dsn) == "invalid dsn: host=db password=*** user=u sslpassword=*** port=5"
    assert redact_text('{"token": "abc", "api_key": 7}') == '{"token": ***, "api_key": ***}'
    assert redact_text("max_tokens=5 key_count=2") == "max_tokens=5 key_count=2"
    # the query's secret goes before the userinfo, even when it holds the last @
    raw = "postgresql://postgres@db:5/optuna?password=p/a?s#s@w:rd"
    assert redact_text(f"x {raw} y") == "x postgresql://***@db:5/optuna?password=*** y"


def test_literal_secrets_are_masked_wherever_they_appear() -> None:
    url = "postgresql://alice:p%2Fa%3Fs%23s@db/optuna"
    assert set(url_secrets(url)) >= {"p%2Fa%3Fs%23s", "p/a?s#s"}
    message = 'FATAL: could not parse "p/a?s#s" near p%2Fa%3Fs%23s'
    assert redact_text(message, url_secrets(url)) == 'FATAL: could not parse "***" near ***'
    assert redact_text("a bc", ["bc"]) == "a bc"  # too short to mask without garbling


def test_an_unencoded_at_in_the_password_is_refused_before_connecting() -> None:
    url = "postgresql+psycopg2://alice:p@ss-word@127.0.0.1:1/optuna"
    assert sqlalchemy_misreads(url)
    assert not sqlalchemy_misreads("postgresql://me@srv:pw@db/optuna")
    assert not sqlalchemy_misreads("postgresql://alice:pw@db/optuna?application_name=a@b")
    with pytest.raises(StudyStorageError, match="%40") as err:
        open_storage(url, 10, 30, 0)
    assert "ss-word" not in err.value.message and "p@ss" not in err.value.message


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg2://alice:p/a?s#s:rd@127.0.0.1:1/optuna",
        "postgresql+psycopg2://alice@127.0.0.1:1/optuna?password=p%2Fa%3Fs%23s%40w%3Ard",
    ],
)
def test_an_unreachable_storage_is_named_without_its_password(url: str) -> None:
    with pytest.raises(StudyStorageError, match="unreachable") as err:
        open_storage(url, 10, 30, 0)  # port 1: refused at once, no retry budget
    assert "p/a?s#s" not in err.value.message and "p%2Fa" not in err.value.message
    assert "127.0.0.1:1/optuna" in err.value.message


def test_a_redacted_config_url_is_never_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(STORAGE_ENV, raising=False)
    for redacted in (
        "postgresql://alice:***@db/optuna",
        "postgresql://alice@db/optuna?password=***",
    ):  # as config.yaml holds it for a resume
        with pytest.raises(StudyStorageError, match=STORAGE_ENV):
            resolve_storage_url(tmp_path, configured=redacted)
        with pytest.raises(StudyStorageError, match=STORAGE_ENV):
            resolve_storage_url(tmp_path, recorded=redacted)
    monkeypatch.setenv(STORAGE_ENV, "postgresql://alice:pw@db/optuna")
    assert resolve_storage_url(tmp_path, configured="postgresql://alice:***@db/optuna") == (
        "postgresql+psycopg2://alice:pw@db/optuna"
    )


GARBAGE = [
    "://",
    "a://@",
    "x://:@",
    "postgresql://@@@@",
    "postgresql://:::@:::",
    "postgresql://[::1",
    "postgresql://u:p@[zz]:x/d?&&&=&password",
    "\x00://\x00:\x00@\x00",
    "sqlite://" + "@" * 10_000,
    "p://" + "a:" * 5_000 + "@h",
    "ünï://ü:ñ@ĥ/ð?pässword=ü",
]


@pytest.mark.parametrize("text", GARBAGE)
def test_garbage_never_raises(text: str) -> None:
    for function in (redact_url, redact_text, is_redacted, url_secrets, sqlalchemy_misreads):
        function(text)


url_like = st.text(alphabet="ab:/@?#&=%*.pswordtkn ", max_size=40).map(lambda s: "pg://" + s)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=60), url_like))
def test_random_text_never_raises(text: str) -> None:
    redacted = redact_url(text)
    assert redacted == text or REDACTED in redacted  # changed only to hide something
    assert not is_redacted(redacted) or REDACTED in redacted
    redact_url(redacted)
    redact_text(text)
    is_redacted(text)
    url_secrets(text)


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet="abcXYZ019/?#:@!$&'()*+,;=%-._~", min_size=6, max_size=20).filter(
        lambda s: "@" not in s and REDACTED not in s
    )
)
def test_any_password_sqlalchemy_reads_is_hidden(password: str) -> None:
    """`/ ? # :` and the rest unencoded, only `@` excluded (SQLAlchemy ends the password at
    the first `@`): the password never appears in the redacted URL."""
    url = f"postgresql://alice:{password}@db:5432/optuna"
    redacted = redact_url(url)
    assert password not in redacted and is_redacted(redacted)
    assert redacted.startswith("postgresql://alice:***@")


@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://ghp_SECRETTOKEN123@host/x", "https://***@host/x"),
        ("postgresql://u@h/db?%70assword=SECRETPW&a=b", "postgresql://u@h/db?%70assword=***&a=b"),
        (" postgresql://u:SECRETPW@h/db", " postgresql://u:***@h/db"),
    ],
)
def test_a_token_as_user_an_encoded_key_and_a_leading_space(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql:/u:SECRETPW@db/opt", "***@db/opt"),  # one slash: no scheme to go by
        ("postgresql//u:SECRETPW@db/opt", "***@db/opt"),
        ("u:SECRETPW@db/opt", "***@db/opt"),
        ("postgresql:/u:p?ss@h/db?sslpassword=KEY", "***@h/db?sslpassword=***"),
        ("u:SECRETPW?password=x@h", "***@h"),
        ("/data/runs@2026/mlruns", "/data/runs@2026/mlruns"),  # paths: nothing hidden
        ("/data/a:b@c", "/data/a:b@c"),
        ("file:/home/me/runs@v2", "file:/home/me/runs@v2"),
        ("u:/SECRETPW@h/db", "***@h/db"),  # not a drive letter
    ],
)
def test_without_a_scheme_all_up_to_the_last_at_is_hidden(url: str, expected: str) -> None:
    assert redact_url(url) == expected and redact_url(expected) == expected
    assert "SECRETPW" not in redact_url(url) and "KEY" not in redact_url(url)
