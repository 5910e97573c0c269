"""The network price providers, each driving its real library against a local fake server:
yfinance (with curl_cffi, TLS, cookie and crumb) against a fake Yahoo reached as an HTTPS
proxy, and tradernet-sdk against a fake Tradernet API that checks every signature."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from nodes.brokers import tradernet_api as api
from nodes.universe import bundle
from nodes.universe.providers import ProviderError, provider, to_close, yahoo_ticker
from nodes.universe.settings import Settings
from tests.fakes import tradernet, yahoo

AAPL = bundle.history("AAPL.US")
NOV = (date(2024, 11, 1), date(2024, 11, 29))


@pytest.fixture(scope="module")
def fake_yahoo(tmp_path_factory):
    with yahoo.serve({"AAPL": AAPL, "BRK-B": AAPL[:10]}, tmp_path_factory.mktemp("yahoo")) as fake:
        yield fake


@pytest.fixture
def fake_tradernet():
    with tradernet.serve({"AAPL.US": AAPL}) as fake:
        yield fake


def yf_settings(fake: yahoo.FakeYahoo) -> Settings:
    return Settings.from_env({"UNIVERSE_YF_PROXY": fake.proxy, "UNIVERSE_YF_CAFILE": str(fake.cafile)})


# -- yfinance -------------------------------------------------------------------------------------
def test_yfinance_gets_the_real_closes_exactly(fake_yahoo, tmp_path):
    source = provider("yfinance", tmp_path, yf_settings(fake_yahoo))
    assert source.fetch("AAPL.US", None, None) == AAPL  # every day, every digit
    window = source.fetch("AAPL.US", *NOV)
    assert window == [(d, c) for d, c in AAPL if NOV[0] <= d <= NOV[1]]
    assert window[-1] == (date(2024, 11, 29), Decimal("237.330002"))  # the end day is included


def test_yfinance_does_its_cookie_and_crumb_handshake(fake_yahoo, tmp_path):
    """Once per process (yfinance keeps them), then every chart request carries the crumb."""
    provider("yfinance", tmp_path, yf_settings(fake_yahoo)).fetch("AAPL.US", date(2024, 10, 1), date(2024, 10, 31))
    paths = [path for _, path, _ in fake_yahoo.requests]
    assert paths.index("/v1/test/getcrumb") < paths.index("/v8/finance/chart/AAPL")
    charts = [q for _, path, q in fake_yahoo.requests if path == "/v8/finance/chart/AAPL"]
    assert charts and all(q["crumb"] == [yahoo.CRUMB] and q["interval"] == ["1d"] for q in charts)
    assert (tmp_path / "yfinance").is_dir()  # its caches in the node's state folder, not ~/.cache


def test_yfinance_maps_tradernet_symbols():
    assert yahoo_ticker("AAPL.US") == "AAPL" and yahoo_ticker("BRK.B.US") == "BRK-B"
    assert yahoo_ticker("EURUSD_T0.ITS") == "EURUSD=X"
    for symbol in ("SAP.EU", "US"):
        with pytest.raises(ProviderError, match="no Yahoo ticker"):
            yahoo_ticker(symbol)


def test_yfinance_failures_are_provider_errors(fake_yahoo, tmp_path):
    source = provider("yfinance", tmp_path, yf_settings(fake_yahoo))
    with pytest.raises(ProviderError, match=r"NOPE.*404"):
        source.fetch("NOPE.US", None, None)
    fake_yahoo.fail = 500
    try:
        with pytest.raises(ProviderError, match="AAPL"):  # a window not asked before: yfinance caches answers
            source.fetch("AAPL.US", date(2024, 9, 1), date(2024, 9, 30))
    finally:
        fake_yahoo.fail = None


def test_yfinance_checks_the_servers_certificate(fake_yahoo, tmp_path):
    """Without the fake's CA the TLS handshake fails: the test path is the real TLS path."""
    source = provider("yfinance", tmp_path, Settings(yf_proxy=fake_yahoo.proxy))
    with pytest.raises(ProviderError, match=r"(?i)certificate|ssl|tls"):
        source.fetch("AAPL.US", date(2024, 8, 1), date(2024, 8, 31))


# -- tradernet ------------------------------------------------------------------------------------
@pytest.mark.parametrize("zone", ["UTC", "Europe/Moscow", "America/New_York"])
def test_tradernet_gets_the_real_closes_on_their_days(zone, tmp_path):
    """Whatever time zone the candles' midnight is in, each close lands on its own day."""
    with tradernet.serve({"AAPL.US": AAPL}, stamp_tz=zone) as fake:
        source = provider("tradernet", tmp_path, Settings.from_env(fake.env()))
        assert source.fetch("AAPL.US", None, None) == AAPL
        assert source.fetch("AAPL.US", *NOV) == [(d, c) for d, c in AAPL if NOV[0] <= d <= NOV[1]]
        sent = fake.accepted("getHloc")[-1]
        assert sent["id"] == "AAPL.US" and sent["timeframe"] == 1440
        assert sent["date_from"] == "01.11.2024 00:00" and sent["date_to"] == "30.11.2024 00:00"


def test_tradernet_refuses_a_wrong_signature(fake_tradernet, tmp_path):
    source = provider("tradernet", tmp_path, Settings.from_env(fake_tradernet.env(private="not-the-key")))
    with pytest.raises(ProviderError, match="Wrong signature"):
        source.fetch("AAPL.US", *NOV)
    assert fake_tradernet.accepted("getHloc") == []


def test_tradernet_errors_are_provider_errors(fake_tradernet, tmp_path):
    source = provider("tradernet", tmp_path, Settings.from_env(fake_tradernet.env()))
    with pytest.raises(ProviderError, match=r"Security NOPE\.US not found"):
        source.fetch("NOPE.US", None, None)
    fake_tradernet.fail = "Service unavailable"
    with pytest.raises(ProviderError, match="Service unavailable"):
        source.fetch("AAPL.US", *NOV)


def test_tradernet_needs_its_keys(tmp_path):
    with pytest.raises(ProviderError, match="TRADERNET_PUBLIC_KEY and TRADERNET_PRIVATE_KEY"):
        provider("tradernet", tmp_path, Settings.from_env({"TRADERNET_PUBLIC_KEY": "only-one"}))
    assert "secret" not in repr(api.Credentials("pub", "secret"))


def test_tradernet_unreachable_is_a_provider_error(tmp_path):
    with tradernet.serve({}) as fake:
        settings = Settings.from_env(fake.env())
    with pytest.raises(ProviderError, match="getHloc"):  # the server is gone: connection refused
        provider("tradernet", tmp_path, settings).fetch("AAPL.US", *NOV)


def _answer(bars, stamps, symbol="X.US"):
    return {"hloc": {symbol: bars}, "xSeries": {symbol: stamps}}


MIDNIGHT = int(datetime(2024, 11, 29, tzinfo=UTC).timestamp())


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        ({"took": 1}, "no hloc/xSeries"),
        (_answer([[2, 1, 1, 1.5]], []), "do not match"),
        (_answer([[2, 1, 1.5]], [MIDNIGHT]), "malformed candle"),
        (_answer([[2, 1, 1, "x"]], [MIDNIGHT]), "not a price"),
        (_answer([[2, 1, 1, float("nan")]], [MIDNIGHT]), "not a price"),
        (_answer([[2, 1, 1, 0]], [MIDNIGHT]), "not a price"),
        (_answer([[2, 1, 1, 3]], [MIDNIGHT]), "outside its day's range"),
        (_answer([[2, 1, 1, 1.5]], ["2024-11-29"]), "malformed candle"),
    ],
)
def test_a_candle_answer_that_is_not_understood_is_refused(answer, says):
    with pytest.raises(api.TradernetError, match=says):
        api.parse_candles(answer, "X.US")


def test_candles_parse():
    assert api.parse_candles(_answer([[2, 1, 1, 1.25]], [MIDNIGHT]), "X.US") == [
        (date(2024, 11, 29), Decimal("1.250000"))
    ]
    assert api.parse_candles({"hloc": {}, "xSeries": {}}, "X.US") == []  # none in the range


@pytest.mark.parametrize("hours", [-10, -5, 0, 3, 9, 11])
def test_a_candle_stamped_at_any_zones_midnight_is_on_its_day(hours):
    assert api.candle_day(MIDNIGHT - hours * 3600) == date(2024, 11, 29)


def test_closes_keep_their_digits():
    assert to_close(237.33, "x") == Decimal("237.330000")
    assert to_close(0.1 + 0.2, "x") == Decimal("0.300000")
    for bad in (float("inf"), -1.0, 0, "1", True, None):
        with pytest.raises(ProviderError):
            to_close(bad, "x")
