"""Replay of recorded Yahoo Finance responses: the network is the only fake.

curl_cffi's ``Session.request`` (the one call every yfinance request goes through) is replaced by
a replay of ``tests/data/yahoo/cassette.json``; yfinance's own cookie/crumb handling, timezone
lookup and chart parsing run for real on the replayed bytes. A request the cassette does not hold
fails the test, so a yfinance upgrade that asks Yahoo for something new is caught.

Fixtures ``fresh_yfinance`` and ``yahoo`` are registered in tests/conftest.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import pytest
from curl_cffi.requests import Session
from curl_cffi.requests.headers import Headers
from curl_cffi.requests.models import Response

RECORDED = Path(__file__).resolve().parent / "data" / "yahoo"


class UnexpectedRequest(AssertionError):
    """yfinance asked for something the cassette does not hold."""


def request_key(method: str, url: str, params: dict | None) -> tuple[str, str, tuple]:
    """Method, URL without query, and the query (URL's and ``params`` merged) as sorted text."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update({name: str(value) for name, value in (params or {}).items()})
    bare_url = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return method.upper(), bare_url, tuple(sorted(query.items()))


@dataclass
class Failure:
    url: str
    params: dict[str, str]
    error: Exception
    times: int | None  # None: every time

    def matches(self, key: tuple[str, str, tuple]) -> bool:
        return key[1] == self.url and set(self.params.items()) <= set(key[2])


@dataclass
class YahooReplay:
    """Serves the cassette's responses by method, URL and query; records every request."""

    interactions: dict[tuple, dict]
    requests: list[tuple] = field(default_factory=list)
    unexpected: list[tuple] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    @classmethod
    def from_cassette(cls, folder: Path) -> YahooReplay:
        cassette = json.loads((folder / "cassette.json").read_text())
        interactions = {}
        for interaction in cassette["interactions"]:
            request = interaction["request"]
            key = request_key(request["method"], request["url"], request["params"])
            interactions[key] = interaction["response"]
        return cls(interactions)

    def fail(self, url: str, error: Exception, *, times: int | None = None, **params: str) -> None:
        """Raise ``error`` instead of answering requests to ``url`` whose query has ``params``."""
        self.failures.append(Failure(url, params, error, times))

    def requests_to(self, url: str) -> list[dict[str, str]]:
        return [dict(query) for _, requested_url, query in self.requests if requested_url == url]

    def request(self, method: str, url: str, **kwargs) -> Response:
        key = request_key(method, url, kwargs.get("params"))
        self.requests.append(key)
        for failure in self.failures:
            if failure.matches(key) and failure.times != 0:
                if failure.times is not None:
                    failure.times -= 1
                raise failure.error
        recorded = self.interactions.get(key)
        if recorded is None:
            self.unexpected.append(key)
            raise UnexpectedRequest(f"no recorded response for {key}")
        return self._response(url, recorded)

    @staticmethod
    def _response(url: str, recorded: dict) -> Response:
        response = Response()
        response.url = url
        response.status_code = recorded["status"]
        response.reason = HTTPStatus(recorded["status"]).phrase
        response.ok = recorded["status"] < 400
        response.headers = Headers(recorded["headers"])
        response.content = (RECORDED / recorded["body_file"]).read_bytes()
        return response


@pytest.fixture
def fresh_yfinance(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No on-disk caches (nothing written to ~/.cache), no crumb or cached response from before."""
    import yfinance.base
    import yfinance.cache
    import yfinance.data

    monkeypatch.setattr(yfinance.cache._TzCacheManager, "_tz_cache", yfinance.cache._TzCacheDummy())
    monkeypatch.setattr(
        yfinance.cache._CookieCacheManager, "_Cookie_cache", yfinance.cache._CookieCacheDummy()
    )
    monkeypatch.setattr(yfinance.base, "_tz_info_fetch_ctr", 0)
    yfinance.data.SingletonMeta._instances.pop(yfinance.data.YfData, None)
    yield
    yfinance.data.SingletonMeta._instances.pop(yfinance.data.YfData, None)
    yfinance.data.YfData.cache_get.cache_clear()


@pytest.fixture
def yahoo(monkeypatch: pytest.MonkeyPatch, fresh_yfinance: None) -> Iterator[YahooReplay]:
    replay = YahooReplay.from_cassette(RECORDED)

    def request(session: Session, method: str, url: str, **kwargs) -> Response:
        return replay.request(method, url, **kwargs)

    monkeypatch.setattr(Session, "request", request)
    yield replay
    assert not replay.unexpected, f"yfinance made unrecorded requests: {replay.unexpected}"
