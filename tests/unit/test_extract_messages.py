"""Kafka messages per docs/contracts.md: keys, values, timestamps, headers, determinism, PII."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from shopstream.dummyjson_stub.catalog import generate_catalog, load_snapshot, snapshot_dir
from shopstream.extract.derive import DEFAULT_SETTINGS
from shopstream.extract.messages import (
    TOPICS,
    KafkaMessage,
    Snapshot,
    build_messages,
    canonical_json,
    hour_bounds_ms,
)
from shopstream.extract.pii import DROPPED_FIELDS, scrub_user, sensitive_values

# The policy, restated independently of the module under test (README "PII policy").
MUST_NOT_LEAVE = ("password", "ssn", "ein", "bank.cardNumber", "bank.iban", "bank.cardExpire", "ip",
                  "macAddress", "crypto.wallet")


def _get(record, path):
    for part in path.split("."):
        record = record.get(part) if isinstance(record, dict) else None
    return record

H13 = datetime(2026, 11, 27, 13, tzinfo=UTC)


@pytest.fixture(scope="module")
def catalog():
    return load_snapshot(snapshot_dir())


@pytest.fixture(scope="module")
def snap(catalog):
    return Snapshot(users=catalog.users, products=catalog.products, carts=catalog.carts)


def all_messages(snap, hour, settings=DEFAULT_SETTINGS) -> dict[str, list[KafkaMessage]]:
    return {t: build_messages(t, snap, hour, settings) for t in TOPICS}


def test_same_hour_gives_byte_identical_messages(snap):
    a, b = all_messages(snap, H13), all_messages(snap, H13)
    for topic in TOPICS:
        assert a[topic] == b[topic]
        assert [m.value for m in a[topic]] == [m.value for m in b[topic]]
    shuffled = Snapshot(users=snap.users[::-1], products=snap.products[::-1], carts=snap.carts[::-1])
    assert all_messages(shuffled, H13) == a


def test_different_hours_differ(snap):
    a, b = all_messages(snap, H13), all_messages(snap, H13 + timedelta(hours=1))
    for topic in ("orders", "events"):
        assert {m.value for m in a[topic]}.isdisjoint({m.value for m in b[topic]})
        assert {m.key for m in a[topic]}.isdisjoint({m.key for m in b[topic]})
    for topic in ("customers", "products"):
        # Same snapshot -> same values, but stamped with their own hour.
        assert [m.value for m in a[topic]] == [m.value for m in b[topic]]
        assert {m.timestamp_ms for m in a[topic]} == {hour_bounds_ms(H13)[0]}
        assert {m.timestamp_ms for m in b[topic]} == {hour_bounds_ms(H13)[1]}


def test_counts_keys_and_values(snap):
    msgs = all_messages(snap, H13)
    assert len(msgs["customers"]) == len(snap.users) == 208
    assert len(msgs["products"]) == len(snap.products) == 194
    assert 5 <= len(msgs["orders"]) <= 40
    assert len(msgs["events"]) == 300
    assert [m.key for m in msgs["customers"]] == [str(u["id"]).encode() for u in snap.users]
    assert [m.key for m in msgs["products"]] == [str(p["id"]).encode() for p in snap.products]
    for m in msgs["products"]:
        assert json.loads(m.value) == next(p for p in snap.products if str(p["id"]).encode() == m.key)
    for m in msgs["orders"]:
        assert json.loads(m.value)["order_id"].encode() == m.key
    for m in msgs["events"]:
        assert json.loads(m.value)["event_id"].encode() == m.key
    for m in msgs["customers"]:
        v = json.loads(m.value)
        assert {"id", "firstName", "lastName", "email"} <= v.keys()


def test_values_are_canonical_json_and_timestamps_inside_the_hour(snap):
    start, end = hour_bounds_ms(H13)
    for topic, msgs in all_messages(snap, H13).items():
        assert msgs
        for m in msgs:
            assert m.topic == topic
            value = json.loads(m.value.decode("utf-8"))
            assert isinstance(value, dict)
            assert m.value == json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
            assert start <= m.timestamp_ms < end
            if topic == "orders":
                assert m.timestamp_ms == int(datetime.fromisoformat(value["order_ts"].replace("Z", "+00:00")).timestamp() * 1000)
            if topic == "events":
                assert m.timestamp_ms == int(datetime.fromisoformat(value["event_ts"].replace("Z", "+00:00")).timestamp() * 1000)


def test_headers(snap):
    sources = {"customers": b"dummyjson:/users", "products": b"dummyjson:/products", "orders": b"derived:/carts",
               "events": b"derived:/users,/products,/carts"}
    for topic, msgs in all_messages(snap, H13).items():
        for m in msgs:
            assert m.headers == (
                ("source", sources[topic]),
                ("schema_version", b"1"),
                ("logical_hour", b"2026-11-27T13:00:00Z"),
                ("content_type", b"application/json"),
            )


def test_topic_name_override(snap):
    msgs = build_messages("orders", snap, H13, topic="orders-abc")
    assert msgs and {m.topic for m in msgs} == {"orders-abc"}
    with pytest.raises(ValueError, match="unknown topic"):
        build_messages("payments", snap, H13)


def test_canonical_json_keeps_unicode():
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()


# ------------------------------------------------------------------------------------------------ PII


def _appears(secret: str, blob: str) -> bool:
    """As a whole JSON string anywhere; long secrets (card numbers, IBANs, wallets, MACs...) also inside any
    string. (Short ones like an EIN `277-240` turn up by chance inside kept phone numbers.)"""
    return json.dumps(secret, ensure_ascii=False) in blob or (len(secret) >= 12 and secret in blob)


def _assert_no_pii(users, messages_by_topic):
    secrets = {_get(u, path) for u in users for path in MUST_NOT_LEAVE} - {None}
    assert len(secrets) >= 5 * len(users)  # password, ssn, ein, card, iban, ... per user
    assert set(MUST_NOT_LEAVE) <= set(DROPPED_FIELDS)
    assert {v for u in users for v in sensitive_values(u)} == secrets
    blob = b"\n".join(m.value for msgs in messages_by_topic.values() for m in msgs).decode()
    leaked = sorted(s for s in secrets if _appears(s, blob))
    assert not leaked, f"{len(leaked)} sensitive values leaked, e.g. {leaked[:3]}"
    for m in messages_by_topic["customers"]:
        v = json.loads(m.value)
        for path in MUST_NOT_LEAVE:
            *parents, leaf = path.split(".")
            node = v
            for p in parents:
                node = node.get(p, {})
            assert leaf not in node, (m.key, path)


def test_no_pii_from_the_snapshot_reaches_any_message(catalog, snap):
    # Sanity: the raw snapshot does contain every kind of value the policy removes.
    for field in ("password", "ssn", "ein"):
        assert all(u[field] for u in catalog.users)
    assert all(u["bank"]["cardNumber"] and u["bank"]["iban"] for u in catalog.users)
    _assert_no_pii(catalog.users, all_messages(snap, H13))


def test_no_pii_from_a_generated_catalogue_reaches_any_message():
    g = generate_catalog(users=500, products=300, carts=500, seed=3)
    _assert_no_pii(g.users, all_messages(Snapshot(g.users, g.products, g.carts), H13))


def test_scrub_user_keeps_the_rest_and_does_not_mutate_the_input(catalog):
    user = catalog.users[0]
    before = json.dumps(user, sort_keys=True)
    out = scrub_user(user)
    assert json.dumps(user, sort_keys=True) == before
    assert "password" not in out and "ssn" not in out and "ein" not in out
    assert "ip" not in out and "macAddress" not in out
    assert set(out["bank"]) == {"cardType", "currency"}
    assert set(out["crypto"]) == {"coin", "network"}
    for key in ("id", "firstName", "lastName", "email", "address", "company", "username", "image"):
        assert out[key] == user[key]
    # Missing or oddly shaped fields are tolerated.
    assert scrub_user({"id": 1, "bank": "n/a"}) == {"id": 1, "bank": "n/a"}
