"""Offline doubles for the provider tests: a fake clock, a fake CCXT exchange, a local HTTP server.

Everything served is real: the recorded pages are real Binance candles of the bundled sample
(see recordings/make_recordings.py).
"""

from __future__ import annotations

import bisect
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import ccxt
import pytest

RECORDINGS = Path(__file__).parent / "recordings"
STEP_MS = 300_000


class FakeClock:
    """``time()`` returns the fake now; ``sleep(s)`` records ``s`` and moves now forward."""

    def __init__(self, now: float) -> None:
        self.now = float(now)
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FakeExchange:
    """Serves CCXT-shaped pages like Binance: candles with open >= since, at most ``limit``.

    ``script`` is a list consumed one entry per call: an exception instance is raised, ``None``
    serves the real page. Candles whose open time is after the fake clock's now are not served
    (they do not exist yet); the candle in progress is served, as exchanges do.
    """

    id = "fakebinance"
    rateLimit = 50  # noqa: N815 - CCXT's attribute name
    enableRateLimit = False  # noqa: N815
    timeframes = {"1m": "1m", "5m": "5m", "1h": "1h", "1d": "1d"}

    def __init__(self, rows, *, symbol="BTC/USDT", clock=None, max_limit=1000, script=()):
        self.rows = [list(r) for r in rows]
        self.times = [r[0] for r in self.rows]
        self.symbol = symbol
        self.clock = clock
        self.max_limit = max_limit
        self.script = list(script)
        self.calls: list[tuple] = []

    def fetch_ohlcv(self, symbol, timeframe="1m", since=None, limit=None, params=None):
        self.calls.append((symbol, timeframe, since, limit))
        if self.script:
            action = self.script.pop(0)
            if isinstance(action, BaseException):
                raise action
        if symbol != self.symbol:
            raise ccxt.BadSymbol(f"binance does not have market symbol {symbol}")
        first = bisect.bisect_left(self.times, since or 0)
        page = self.rows[first:first + min(limit or 500, self.max_limit)]
        if self.clock is not None:
            page = [r for r in page if r[0] <= self.clock.time() * 1000]
        return [list(r) for r in page]


@pytest.fixture(scope="session")
def btc_rows() -> list[list]:
    """Real BTC/USDT 5m rows 2021-04-19..2021-04-21 (546 candles, one 30-candle gap)."""
    return json.loads((RECORDINGS / "ccxt_binance_BTC_USDT_5m_2021-04-19.json").read_text())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_700_000_000.0)  # 2023-11-14, long after the recorded candles


@pytest.fixture(scope="session")
def fake_exchange_cls():
    return FakeExchange


class UDFServer:
    """A real HTTP server on 127.0.0.1 answering ``/market/udf/history`` like Nobitex.

    It serves the recorded candles with ``from <= t <= to``, at most ``cap`` per answer, or
    ``{"s": "no_data"}`` when none fall in the range. ``script`` entries, consumed one per
    request, override the answer: ``(status, body_bytes, headers)`` or ``("sleep", seconds)``
    (answer normally after a delay, to trigger client timeouts).
    """

    def __init__(self, udf: dict, cap: int = 500) -> None:
        self.udf = udf
        self.cap = cap
        self.script: list = []
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server API
                parsed = urllib.parse.urlparse(self.path)
                query = {k: v[0] for k, v in urllib.parse.parse_qs(parsed.query).items()}
                server.requests.append({"path": parsed.path, **query})
                status, body, headers = server.answer(parsed.path, query)
                try:
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def answer(self, path: str, query: dict) -> tuple[int, bytes, dict]:
        if self.script:
            action = self.script.pop(0)
            if action[0] == "sleep":
                threading.Event().wait(action[1])
            else:
                return action
        if path != "/market/udf/history":
            return 404, b'{"detail": "Not found."}', {}
        if query.get("symbol") != "BTCIRT":
            return 200, (RECORDINGS / "nobitex_udf_error.json").read_bytes(), {}
        lo, hi = int(query["from"]), int(query["to"])
        picked = [i for i, t in enumerate(self.udf["t"]) if lo <= t <= hi][: self.cap]
        if not picked:
            return 200, (RECORDINGS / "nobitex_udf_no_data.json").read_bytes(), {}
        body = {"s": "ok", **{k: [self.udf[k][i] for i in picked] for k in "tohlcv"}}
        return 200, json.dumps(body).encode(), {}

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def udf_server():
    udf = json.loads((RECORDINGS / "nobitex_udf_BTCIRT_5_2021-04-19.json").read_text())
    server = UDFServer(udf)
    yield server
    server.close()


@pytest.fixture(scope="session")
def make_clock():
    """The factory ``make_clock(now_seconds) -> FakeClock``."""
    return FakeClock
