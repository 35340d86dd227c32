"""Secrets out of what is shown or written: one redactor for URLs (the study storage, the
MLflow and Vault addresses) and one for free text (exception messages, which may echo a URL
or a `password=...` fragment of a connection string). Never raises, on any input.

A password may hold `/ ? # :` unencoded (SQLAlchemy reads everything up to the `@`), so
where SQLAlchemy would misread a URL (an unencoded `@` in its password) the whole userinfo
up to the LAST `@` counts as secret: more is hidden rather than less."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

REDACTED = "***"  # what SQLAlchemy's render_as_string(hide_password=True) puts in its place
MIN_SECRET_LENGTH = 4  # shorter literal secrets are not masked in text (they would garble it)

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# a local path, not a URL (a drive letter is not: `u:/pw@h` would pass for `C:/x`)
_PATH = re.compile(r"[/.~]|(?i:file):")
# SQLAlchemy's own pattern (sqlalchemy.engine.url._parse_url), for the raw parts it reads
_SQLALCHEMY_URL = re.compile(
    r"(?P<name>[\w\+]+)://(?:(?P<username>[^:/]*)(?::(?P<password>[^@]*))?@)?"
    r"(?:(?:\[(?P<host6>[^/\?]+)\]|(?P<host4>[^/:\?]+))?(?::(?P<port>[^/\?]*))?)?"
    r"(?:/(?P<database>[^\?]*))?(?:\?(?P<query>.*))?",
    re.DOTALL,
)
# starts only where a scheme can (not inside a word): linear time on any text
_URL_IN_TEXT = re.compile(r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{0,31}://\S+")
# names of query parameters / key=value pairs whose value is a secret (case-insensitive)
_SECRET_KEY = (
    r"(?:[\w.-]*?(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|credentials?)"
    r"|key|pass|auth|sig|signature)"
)
_QUERY_SECRET = re.compile(rf"([?&]{_SECRET_KEY}=)([^&]*)", re.IGNORECASE)
_TEXT_SECRET = re.compile(
    rf"(?<![\w.-])({_SECRET_KEY}\s*=\s*)('[^']*'|\"[^\"]*\"|[^\s&]+)", re.IGNORECASE
)
_QUOTED_SECRET = re.compile(
    rf"([\"'])({_SECRET_KEY})\1(\s*:\s*)(\"[^\"]*\"|'[^']*'|[^\s,}}]+)", re.IGNORECASE
)


def redact_url(url: str) -> str:
    """`url` with its password and secret query parameters (`password=`, `token=`, ...)
    replaced by `***`; the user name, host, port and database stay readable. A URL without
    a secret comes back unchanged."""
    if url[:1].isspace():  # " postgresql://u:pw@h" still reaches a driver that strips it
        body = url.lstrip()
        return url[: len(url) - len(body)] + redact_url(body)
    split = _userinfo_with_password(url)
    if split is None:
        return _drop_web_userinfo(_scrub_query(_drop_schemeless_userinfo(url)))
    parsed = _sqlalchemy_reading(url)
    if parsed is not None:
        text = url if parsed.password is None else parsed.render_as_string(hide_password=True)
        return _scrub_query(text)
    # SQLAlchemy cannot parse it, or would read part of the password as the host: secret
    # query values go first (they may hold the last '@'), then all up to the last '@'
    scrubbed = _scrub_query(url)
    split = _userinfo_with_password(scrubbed)
    if split is None:
        return scrubbed
    scheme, user, _, after = split
    return f"{scheme}{user}:{REDACTED}@{after}"


def is_redacted(url: str) -> bool:
    """A URL whose password or secret query parameter `redact_url` (or `redact_text`)
    replaced: it cannot be used to connect."""
    match = _SCHEME.match(url)
    if match is None:
        return False
    rest = url[match.end() :]
    candidates = [unquote(value) for _, value in _QUERY_SECRET.findall(url)]
    for at in (rest.find("@"), rest.rfind("@")):  # as SQLAlchemy reads it, and as we do
        if at >= 0 and not rest.startswith("/"):
            user, _, password = rest[:at].partition(":")
            candidates += [user, password]
    return REDACTED in candidates


def url_secrets(url: str) -> list[str]:
    """The literal secrets of `url` (its password as written, percent-decoded and as
    SQLAlchemy reads it, and the values of its secret query parameters), longest first, to
    mask in messages that might echo them."""
    found = [value for _, value in _QUERY_SECRET.findall(url)]
    split = _userinfo_with_password(url)
    if split is not None:
        found.append(split[2])
    parsed = _sqlalchemy_reading(url, trusted_only=False)
    if parsed is not None and parsed.password:
        found.append(str(parsed.password))
    found += [unquote(value) for value in found]
    return sorted({s for s in found if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every URL's userinfo (`user:password@`, a token as user name) replaced by
    `***@`, secret query parameters and `password=...` / `"token": ...` pairs masked, and
    each of `secrets` (at least MIN_SECRET_LENGTH long) masked wherever it appears."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= MIN_SECRET_LENGTH:
            text = text.replace(secret, REDACTED)
    text = _URL_IN_TEXT.sub(lambda m: _drop_userinfo(m.group(0)), text)
    text = _TEXT_SECRET.sub(rf"\1{REDACTED}", text)
    return _QUOTED_SECRET.sub(rf"\1\2\1\3{REDACTED}", text)


def sqlalchemy_misreads(url: str) -> bool:
    """True when `url` has a password and several `@` that SQLAlchemy would read otherwise
    than as one `user:password@` (an unencoded `@` in the password: SQLAlchemy ends the
    password at the first `@`, so connecting would send the rest as the host name)."""
    split = _userinfo_with_password(url)
    return split is not None and url.count("@") > 1 and _sqlalchemy_reading(url) is None


def _userinfo_with_password(url: str) -> tuple[str, str, str, str] | None:
    """(`scheme://`, user, password, the rest after the LAST `@`) when the URL has a
    `user:password@` part; None otherwise (no `@`, no `:` before it, or an empty authority
    as in `sqlite:////path`)."""
    match = _SCHEME.match(url)
    if match is None:
        return None
    rest = url[match.end() :]
    at = rest.rfind("@")
    if at < 0 or rest.startswith("/"):
        return None
    user, colon, password = rest[:at].partition(":")
    return (match.group(0), user, password, rest[at + 1 :]) if colon else None


def _sqlalchemy_reading(url: str, trusted_only: bool = True) -> Any:
    """SQLAlchemy's URL object for `url`; None where it cannot parse it or, with
    `trusted_only`, where its reading shows an unencoded `@` in the password: an `@` in the
    host, port or database, or in the query other than in a parameter's value."""
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
    except Exception:  # noqa: BLE001 (any parse failure: the manual split applies)
        return None
    if not trusted_only:
        return parsed
    groups = _SQLALCHEMY_URL.match(url)
    if groups is None:  # pragma: no cover (make_url parsed it with the same pattern)
        return None
    after_userinfo = [groups.group(g) or "" for g in ("host6", "host4", "port", "database")]
    query_names = [p.partition("=")[0] for p in (groups.group("query") or "").split("&")]
    if any("@" in part for part in [*after_userinfo, *query_names]):
        return None
    return parsed


def _drop_userinfo(url: str) -> str:
    """A URL found in text, with its secret query values masked and what precedes its last
    `@` dropped (in free text a user name may be a token), unless that part is a path
    (`sqlite:////a@b.db`, `https://host/users/@me`)."""
    url = _scrub_query(url)
    match = _SCHEME.match(url)
    rest = url[match.end() :] if match else ""
    at = rest.rfind("@")
    if match is None or at < 0 or rest.startswith("/"):
        return url
    userinfo = rest[:at]
    if "/" in userinfo and ":" not in userinfo:
        return url
    return f"{match.group(0)}{REDACTED}@{rest[at + 1 :]}"


def _drop_schemeless_userinfo(url: str) -> str:
    """Without `scheme://` (a mistyped `postgresql:/u:pw@h`, or `u:pw@h`) nothing tells a
    password apart: all up to the last `@` is hidden when it has a `:`. Before the query is
    scrubbed: a `?` in the password would hide the query's secrets from it. A path stays
    (`/data/a:b@c`, `./x`, `~/x`, `file:/x@v2`)."""
    if _SCHEME.match(url) or _PATH.match(url):
        return url
    at = url.rfind("@")
    return f"{REDACTED}@{url[at + 1 :]}" if at > 0 and ":" in url[:at] else url


def _drop_web_userinfo(url: str) -> str:
    """An http(s) URL's user name alone is a credential (`https://TOKEN@host`): hidden."""
    match = re.match(r"(?i)(https?://)([^/@?#]+)@", url)
    return f"{match.group(1)}{REDACTED}@{url[match.end():]}" if match else url


def _scrub_query(url: str) -> str:
    """Secret query values masked; a percent-encoded name (`%70assword`) counts as decoded."""
    base, mark, query = url.partition("?")
    if not mark:
        return url
    parts = []
    for item in query.split("&"):
        name, eq, _ = item.partition("=")
        secret = eq and _QUERY_SECRET.match(f"?{unquote(name)}=")
        parts.append(f"{name}={REDACTED}" if secret else item)
    return f"{base}?{'&'.join(parts)}"
