"""The local DummyJSON-compatible server against CONTRACT.md: real HTTP on 127.0.0.1, port 0."""

from __future__ import annotations

import gzip
import json
import socket
import time

import pytest
import requests
from shopstream.dummyjson_stub.__main__ import main
from shopstream.dummyjson_stub.catalog import generate_catalog
from shopstream.dummyjson_stub.fault_rules import FaultPlan
from shopstream.dummyjson_stub.routes import js_number, js_parse_int
from shopstream.dummyjson_stub.server import DummyJSONServer

from tests.support.fake_clock import FakeClock


@pytest.fixture
def base(server):
    server.clear_faults()
    server.reset()
    return server.url


def get(url: str, **kw) -> requests.Response:
    kw.setdefault("timeout", 10)
    return requests.get(url, **kw)


# ------------------------------------------------------------------------------------ envelope
def test_default_envelope_is_the_first_30_in_id_order(base, snapshot):
    body = get(f"{base}/users").json()
    assert list(body) == ["users", "total", "skip", "limit"]
    assert body["total"] == 208 and body["skip"] == 0 and body["limit"] == 30
    assert body["users"] == snapshot.users[:30]


def test_limit_zero_means_all_and_there_is_no_maximum(base, snapshot):
    assert get(f"{base}/products?limit=0").json()["products"] == snapshot.products
    body = get(f"{base}/products?limit=100000").json()
    assert body["limit"] == 194 and len(body["products"]) == 194


def test_limit_echoes_the_number_returned(base):
    body = get(f"{base}/products?skip=180&limit=30").json()
    assert body["limit"] == 14 and body["skip"] == 180 and body["total"] == 194
    assert [p["id"] for p in body["products"]] == list(range(181, 195))


def test_past_the_end_is_an_empty_200(base):
    r = get(f"{base}/carts?skip=5000&limit=10")
    assert r.status_code == 200
    assert r.json() == {"carts": [], "total": 208, "skip": 5000, "limit": 0}


@pytest.mark.parametrize(
    ("query", "count", "skip"),
    [
        ("limit=", 0, 0),  # NaN limit -> empty
        ("limit=Infinity", 0, 0),
        ("limit=1e2", 1, 0),
        ("limit=0x10", 194, 0),  # parseInt(.., 10) -> 0 -> all
        ("limit=1.9", 1, 0),
        ("limit=-4", 190, 0),  # all but the last 4
        ("skip=-3&limit=2", 2, -3),  # ignored, but echoed
        ("skip=&limit=2", 2, None),  # NaN skip -> no skip, echoed as null
    ],
)
def test_odd_numeric_inputs_follow_javascript(base, query, count, skip):
    body = get(f"{base}/products?{query}").json()
    assert len(body["products"]) == count == body["limit"]
    assert body["skip"] == skip
    if count:
        assert body["products"][0]["id"] == 1


def test_select_keeps_top_level_keys_with_id_first(base, snapshot):
    body = get(f"{base}/users?limit=2&select=lastName,age,nope").json()
    assert [list(u) for u in body["users"]] == [["id", "lastName", "age"]] * 2
    assert body["users"][0] == {k: snapshot.users[0][k] for k in ("id", "lastName", "age")}
    repeated = get(f"{base}/products?limit=1&select=price&select=id,title").json()["products"][0]
    assert list(repeated) == ["id", "price", "title"]
    assert list(get(f"{base}/users/3?select=email").json()) == ["id", "email"]


def test_carts_ignore_select_and_sort(base, snapshot):
    body = get(f"{base}/carts?limit=3&select=total&sortBy=total&order=desc").json()
    assert body["carts"] == snapshot.carts[:3]
    assert get(f"{base}/carts/5?select=total").json() == snapshot.carts[4]


def test_sort_by_and_order(base, snapshot):
    body = get(f"{base}/products?limit=0&sortBy=price&order=DESC&select=price").json()
    prices = [p["price"] for p in body["products"]]
    assert prices == sorted((p["price"] for p in snapshot.products), reverse=True)
    assert body["total"] == 194
    unknown = get(f"{base}/products?limit=5&sortBy=nope").json()["products"]
    assert [p["id"] for p in unknown] == [1, 2, 3, 4, 5]


def test_by_id_and_singular_aliases(base, snapshot):
    assert get(f"{base}/users/7").json() == snapshot.users[6]
    assert get(f"{base}/user/7").json() == snapshot.users[6]
    assert get(f"{base}/product/194").json() == snapshot.products[193]
    assert get(f"{base}/cart/1").json() == snapshot.carts[0]
    assert get(f"{base}/product?limit=1").json()["products"] == snapshot.products[:1]


def test_search_filter_category_and_user_carts(base, snapshot):
    body = get(f"{base}/users/search?q=EMILY&limit=0").json()
    fields = ("firstName", "lastName", "email", "username")
    expected = [u["id"] for u in snapshot.users if any("emily" in u[f].lower() for f in fields)]
    assert expected and [u["id"] for u in body["users"]] == expected and body["total"] == len(expected)
    assert get(f"{base}/users/filter?key=hair.color&value=Brown&limit=0").json()["total"] == sum(
        u["hair"]["color"] == "Brown" for u in snapshot.users)
    cat = get(f"{base}/products/category/SMARTPHONES?limit=0").json()
    assert cat["total"] == sum(p["category"] == "smartphones" for p in snapshot.products)
    assert len(get(f"{base}/products/categories").json()) == 24
    assert get(f"{base}/products/category-list").json()[0] == "beauty"
    assert get(f"{base}/users/7/carts").json()["carts"] == [snapshot.carts[6]]
    assert get(f"{base}/carts/user/7").json()["carts"] == [snapshot.carts[6]]


# -------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/users?limit=abc", 400, "Invalid 'limit' - must be a number"),
        ("/users?limit=10abc", 400, "Invalid 'limit' - must be a number"),
        ("/products?skip=abc", 400, "Invalid 'skip' - must be a number"),
        ("/products?sortBy=x&order=up", 400, "Order can be: 'asc' or 'desc'"),
        ("/carts?sortBy=x&order=up", 400, "Order can be: 'asc' or 'desc'"),
        ("/users?delay=9000", 400, "Delay cannot be greater than 5 seconds"),
        ("/users?delay=-1", 400, "Delay cannot be less than 0"),
        ("/users?delay=abc", 400, "Delay must be a number in milliseconds"),
        ("/users/search?q[]=a", 400, "Invalid 'q' - must be a string"),
        ("/users/abc", 400, "Invalid user id 'abc'"),
        ("/users/99999", 404, "User with id '99999' not found"),
        ("/users/01", 404, "User with id '01' not found"),
        ("/products/99999", 404, "Product with id '99999' not found"),
        ("/products/abc", 404, "Product with id 'abc' not found"),
        ("/products/1.0", 404, "Product with id '1.0' not found"),
        ("/carts/99999", 404, "Cart with id '99999' not found"),
        ("/carts/user/abc", 400, "Invalid user id 'abc'"),
        ("/users/99999/carts", 404, "User with id '99999' not found"),
    ],
)
def test_json_errors(base, path, status, message):
    r = get(f"{base}{path}")
    assert r.status_code == status
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {"message": message}


@pytest.mark.parametrize("path", ["/productz", "/products/1/extra", "/users/1/carts/x"])
def test_unknown_paths_get_an_html_404(base, path):
    r = get(f"{base}{path}")
    assert r.status_code == 404
    assert r.headers["Content-Type"].startswith("text/html")
    assert f"Cannot GET {path}" in r.text
    with pytest.raises(ValueError):
        r.json()


def test_trailing_slash_redirects_keeping_the_query(base, snapshot):
    r = get(f"{base}/products/?limit=2", allow_redirects=False)
    assert r.status_code == 301 and r.headers["Location"] == "/products?limit=2"
    followed = get(f"{base}/products/?limit=2")
    assert followed.json()["products"] == snapshot.products[:2]


def test_delay_waits(base):
    t = time.monotonic()
    assert get(f"{base}/users/1?delay=120").status_code == 200
    assert time.monotonic() - t >= 0.11


def test_gzip_and_weak_etag(base, snapshot):
    raw = requests.get(f"{base}/users?limit=50", headers={"Accept-Encoding": "gzip"}, stream=True, timeout=10)
    assert raw.headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(raw.raw.read()))["users"] == snapshot.users[:50]
    etag = raw.headers["ETag"]
    assert etag.startswith('W/"')
    assert get(f"{base}/users?limit=50", headers={"If-None-Match": etag}).status_code == 304


# ---------------------------------------------------------------------------------- rate limit
def test_rate_limit_fixed_window_with_retry_after(snapshot):
    clock = FakeClock()
    with DummyJSONServer(snapshot, rate_limit=3, rate_window=10, clock=clock.time) as url:
        remaining = []
        for _ in range(3):
            r = get(f"{url}/users/1")
            assert r.status_code == 200
            remaining.append(int(r.headers["X-RateLimit-Remaining"]))
            assert r.headers["X-RateLimit-Limit"] == "3"
            assert int(r.headers["X-RateLimit-Reset"]) == 1_000_010
        assert remaining == [2, 1, 0]
        limited = get(f"{url}/productz")  # every path counts, 404s too
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "10"
        assert limited.json() == {"message": "request limit exceeded, please wait a few seconds"}
        # Another client IP (left-most X-Forwarded-For) has its own counter.
        assert get(f"{url}/users/1", headers={"X-Forwarded-For": "10.0.0.9, 127.0.0.1"}).status_code == 200
        clock.advance(10.0)
        again = get(f"{url}/users/1")
        assert again.status_code == 200 and again.headers["X-RateLimit-Remaining"] == "2"
        assert get(f"{url}/__health").json()["rate_limit"] == 3  # admin routes are not limited


def test_rate_limit_disabled_sends_no_headers(base):
    r = get(f"{base}/users/1")
    assert r.status_code == 200 and "X-RateLimit-Limit" not in r.headers


def test_rate_limit_reconfigurable_at_runtime(snapshot):
    with DummyJSONServer(snapshot, rate_limit=None) as url:
        assert requests.post(f"{url}/__config", json={"rate_limit": 1}, timeout=5).status_code == 200
        assert get(f"{url}/users/1").status_code == 200
        assert get(f"{url}/users/1").status_code == 429


# -------------------------------------------------------------------------------------- faults
def test_fault_rules_fire_by_counter_and_path(server, base):
    server.set_faults([{"fault": "503", "on": [2], "path": "/users"},
                       {"fault": "status", "status": 500, "every": 3, "path": "/products"}])
    users = [get(f"{base}/users/1").status_code for _ in range(4)]
    products = [get(f"{base}/products/1").status_code for _ in range(6)]
    assert users == [200, 503, 200, 200]
    assert products == [200, 200, 500, 200, 200, 500]
    described = {r["fault"] + str(r.get("status")): r for r in get(f"{base}/__faults").json()["rules"]}
    assert described["status503"]["fired"] == 1 and described["status500"]["seen"] == 6


def test_fault_burst_times_and_query_selector(server, base):
    server.set_faults([{"fault": "429", "first": 2, "retry_after": 3, "query": {"skip": "100"}}])
    assert get(f"{base}/users?skip=0").status_code == 200  # not counted: other page
    burst = [get(f"{base}/users?skip=100") for _ in range(3)]
    assert [r.status_code for r in burst] == [429, 429, 200]
    assert burst[0].headers["Retry-After"] == "3"
    server.set_faults([{"fault": "500", "times": 1}])
    assert [get(f"{base}/users/1").status_code for _ in range(2)] == [500, 200]


def test_rate_faults_are_deterministic():
    def pattern() -> list[bool]:
        plan = FaultPlan([{"fault": "503", "rate": 0.3, "seed": 11}])
        return [plan.pick("/users", {}) is not None for _ in range(200)]

    first = pattern()
    assert first == pattern()
    assert 30 <= sum(first) <= 90


def test_body_faults_shape_the_envelope(server, base):
    server.set_faults([
        {"fault": "envelope", "on": [1]},
        {"fault": "envelope", "variant": "total_type", "on": [2]},
        {"fault": "missing_id", "on": [3], "index": 1},
        {"fault": "total", "on": [4], "delta": 5},
        {"fault": "duplicate_id", "on": [5]},
        {"fault": "envelope", "variant": "list", "on": [6]},
    ])
    bodies = [get(f"{base}/users?limit=3").json() for _ in range(7)]
    assert "users" not in bodies[0] and len(bodies[0]["items"]) == 3
    assert bodies[1]["total"] == "208"
    assert "id" not in bodies[2]["users"][1] and "id" in bodies[2]["users"][0]
    assert bodies[3]["total"] == 213
    assert bodies[4]["users"][1]["id"] == bodies[4]["users"][0]["id"] == 1
    assert isinstance(bodies[5], list)
    assert bodies[6]["total"] == 208 and [u["id"] for u in bodies[6]["users"]] == [1, 2, 3]
    # The shared records were not modified by the faults.
    assert get(f"{base}/users/2").json()["id"] == 2


def test_transport_faults(server, base):
    server.set_faults([{"fault": "drop", "on": [1]}, {"fault": "truncate", "on": [2], "mode": "short"},
                       {"fault": "truncate", "on": [3]}, {"fault": "slow", "on": [4], "seconds": 1.0},
                       {"fault": "html", "on": [5]}])
    with pytest.raises(requests.ConnectionError):
        get(f"{base}/users?limit=5")
    short = get(f"{base}/users?limit=5")
    assert short.status_code == 200
    with pytest.raises(ValueError):
        json.loads(short.content)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        get(f"{base}/users?limit=5")
    with pytest.raises(requests.exceptions.ReadTimeout):
        get(f"{base}/users?limit=5", timeout=0.2)
    assert get(f"{base}/users?limit=5").headers["Content-Type"].startswith("text/html")
    assert get(f"{base}/users?limit=5").json()["limit"] == 5
    events = get(f"{base}/__stats").json()["events"]
    assert events["fault:drop"] == 1 and events["fault:truncate"] == 2 and events["fault:slow"] == 1


def test_admin_endpoints_set_and_clear_faults(server, base):
    spec = json.dumps([{"fault": "502", "on": [1]}])
    assert get(f"{base}/__faults", params={"spec": spec}).json()["rules"][0]["status"] == 502
    assert get(f"{base}/users/1").status_code == 502
    posted = requests.post(f"{base}/__faults", data=json.dumps({"rules": [{"fault": "504"}]}), timeout=5)
    assert posted.status_code == 200
    assert get(f"{base}/users/1").status_code == 504
    assert requests.delete(f"{base}/__faults", timeout=5).json() == {"rules": []}
    assert get(f"{base}/users/1").status_code == 200
    bad = requests.post(f"{base}/__faults", data='[{"fault": "nope"}]', timeout=5)
    assert bad.status_code == 400 and "unknown fault" in bad.json()["message"]
    stats = get(f"{base}/__stats").json()
    assert stats["responses"]["502"] == 1 and stats["responses"]["504"] == 1
    assert requests.post(f"{base}/__reset", timeout=5).json()["requests"] == 0


def test_faults_from_the_environment_variable(monkeypatch, snapshot_path, capsys):
    """The CLI reads $SHOPSTREAM_DUMMYJSON_FAULTS; a taken port is a clear error (exit code 3)."""
    monkeypatch.setenv("SHOPSTREAM_DUMMYJSON_FAULTS", "[{\"fault\": \"nope\"}]")
    assert main(["--port", "0", "--data", str(snapshot_path)]) == 2
    assert "unknown fault" in capsys.readouterr().err
    monkeypatch.delenv("SHOPSTREAM_DUMMYJSON_FAULTS")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["--port", str(port), "--data", str(snapshot_path)]) == 3
    assert "already in use" in capsys.readouterr().err


# --------------------------------------------------------------------------------------- misc
def test_generated_catalogue_is_served_when_asked():
    with DummyJSONServer(generate="users=40,products=30,carts=40", seed=5, rate_limit=None) as url:
        body = get(f"{url}/carts?limit=0").json()
        assert body["total"] == 40
        expected = generate_catalog(users=40, products=30, carts=40, seed=5)
        assert body["carts"] == expected.carts
        assert get(f"{url}/__health").json()["sizes"] == {"users": 40, "products": 30, "carts": 40}


def test_js_number_parsing():
    assert js_number("") == 0 and js_number(" 12 ") == 12 and js_number("0x10") == 16
    assert js_number("1e2") == 100 and js_number("Infinity") == float("inf")
    assert js_number("10abc") != js_number("10abc")  # NaN
    assert js_parse_int("1e2") == 1 and js_parse_int("0x10") == 0 and js_parse_int("-7.9") == -7
    assert js_parse_int("") is None and js_parse_int("Infinity") is None
