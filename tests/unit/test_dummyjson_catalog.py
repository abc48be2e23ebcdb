"""The seeded catalogue generator and the snapshot loader."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from shopstream.dummyjson_stub.catalog import (
    catalog_digest,
    generate_catalog,
    has_snapshot,
    load_snapshot,
    parse_sizes,
    snapshot_dir,
)

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


@pytest.fixture(scope="module")
def generated():
    return generate_catalog(users=600, products=500, carts=700, seed=13)


def test_snapshot_loads_the_published_counts(snapshot):
    assert snapshot.sizes == {"users": 208, "products": 194, "carts": 208}
    assert [u["id"] for u in snapshot.users] == list(range(1, 209))


def test_snapshot_dir_resolves_relative_paths_against_the_root(monkeypatch, tmp_path):
    monkeypatch.setenv("SHOPSTREAM_DUMMYJSON_DATA", "data/dj")
    assert snapshot_dir(tmp_path) == (tmp_path / "data" / "dj").resolve()
    monkeypatch.setenv("SHOPSTREAM_DUMMYJSON_DATA", str(tmp_path / "abs"))
    assert snapshot_dir("/elsewhere") == (tmp_path / "abs").resolve()
    assert not has_snapshot(tmp_path)
    with pytest.raises(FileNotFoundError, match="users.json"):
        load_snapshot(tmp_path)


def test_generator_is_deterministic_across_processes(generated):
    again = generate_catalog(users=600, products=500, carts=700, seed=13)
    assert catalog_digest(again) == catalog_digest(generated)
    assert catalog_digest(generate_catalog(users=600, products=500, carts=700, seed=14)) != catalog_digest(generated)
    code = ("from shopstream.dummyjson_stub.catalog import generate_catalog, catalog_digest;"
            "print(catalog_digest(generate_catalog(users=600, products=500, carts=700, seed=13)))")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONPATH": str(PLUGINS), "PYTHONHASHSEED": "123"})
    assert other.stdout.strip() == catalog_digest(generated)


def _shape(value):
    """Key structure and JSON types (int vs number vs string ...) of a value."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


@pytest.mark.parametrize("resource", ["users", "products", "carts"])
def test_generated_records_have_the_snapshot_fields_and_types(snapshot, generated, resource):
    expected = _shape(snapshot[resource][0])
    for record in generated[resource][:50]:
        shape = _shape(record)
        if resource == "products" and "brand" not in record:
            shape = {**shape, "brand": "str"}
            shape = {k: shape[k] for k in expected}
        assert shape == expected
        assert list(record) == [k for k in expected if k in record]  # key order too


def test_generated_values_follow_the_contract(generated):
    users, products, carts = generated.users, generated.products, generated.carts
    assert [u["id"] for u in users] == list(range(1, 601))
    assert len({u["email"] for u in users}) == len(users) and len({u["username"] for u in users}) == len(users)
    for u in users:
        year, month, day = u["birthDate"].split("-")
        assert int(year) + u["age"] == 2025 and not month.startswith("0") and not day.startswith("0")
        assert u["password"] and u["ssn"].count("-") == 2 and u["ein"].count("-") == 1
        assert u["bank"]["cardNumber"].isdigit() and len(u["bank"]["cardNumber"]) in (15, 16)
        assert u["bank"]["iban"][:2].isalpha() and isinstance(u["address"]["postalCode"], str)
    assert {u["role"] for u in users} == {"user", "moderator", "admin"}
    assert 0.3 < sum("brand" not in p for p in products) / len(products) < 0.7
    assert len({p["sku"] for p in products}) == len(products)
    for p in products:
        assert len(p["reviews"]) == 3 and 1 <= len(p["images"]) <= 6 and 1 <= len(p["tags"]) <= 3
        assert p["meta"]["createdAt"] == p["meta"]["updatedAt"] and len(p["meta"]["barcode"]) == 13
        assert (p["stock"] == 0) == (p["availabilityStatus"] == "Out of Stock")
    by_id = {p["id"]: p for p in products}
    user_ids = {u["id"] for u in users}
    for c in carts:
        assert c["userId"] in user_ids and (c["id"] > 600 or c["userId"] == c["id"])
        assert 2 <= c["totalProducts"] == len(c["products"]) <= 6
        assert c["totalQuantity"] == sum(line["quantity"] for line in c["products"])
        for line in c["products"]:
            product = by_id[line["id"]]
            assert (line["title"], line["price"], line["thumbnail"]) == (
                product["title"], product["price"], product["thumbnail"])
            assert line["total"] == product["price"] * line["quantity"]  # raw float, not rounded
        assert c["total"] == round(sum(line["total"] for line in c["products"]), 2)
    assert any(len({line["id"] for line in c["products"]}) < len(c["products"]) for c in carts)


PII_PATHS = ("password", "ssn", "ein", "ip", "macAddress", "bank.cardNumber", "bank.iban", "crypto.wallet")


def test_generated_pii_values_never_hide_inside_kept_fields():
    """Leak checks by substring stay exact: no PII value occurs in any non-PII field of the catalogue."""
    g = generate_catalog(users=1500, products=300, carts=1500, seed=3)
    secrets, first_users, kept = set(), set(), []
    for n, user in enumerate(g.users):
        user = json.loads(json.dumps(user))
        for path in PII_PATHS:
            *parents, leaf = path.split(".")
            node = user
            for part in parents:
                node = node[part]
            secrets.add(node[leaf])
            if n < 150:
                first_users.add(node[leaf])
            del node[leaf]
        kept.append(user)
    blob = json.dumps([kept, g.products, g.carts])
    assert len(secrets) > 7.9 * 1500  # (a few eins repeat: 90,000 possible values)
    # Fixed-format secrets: compare with every overlapping candidate in the blob (fast and exact).
    candidates = set(re.findall(r"(?=(\d{3}-\d{3}-\d{3}))", blob)) | set(re.findall(r"(?=(\d{3}-\d{3}))", blob))
    short = {s for s in secrets if re.fullmatch(r"\d{3}-\d{3}(-\d{3})?", s)}
    assert len(short) > 1.9 * 1500 and short & candidates == set()
    # The rest (passwords, ip, mac, card numbers, iban, wallets): plain substring search (a sample: slow).
    assert [s for s in first_users - short if s in blob] == []


def test_generator_serialises_like_json_from_javascript(generated):
    text = json.dumps(generated.as_dict())
    assert ".0," not in text and ".0}" not in text  # integral numbers without a fraction


def test_generator_is_fast_enough_for_large_catalogues():
    t = time.perf_counter()
    big = generate_catalog(users=20_000, products=2_000, carts=2_000, seed=1)
    elapsed = time.perf_counter() - t
    assert len(big.users) == 20_000
    assert elapsed < 10, f"20k users took {elapsed:.1f} s"


def test_parse_sizes_and_bad_input():
    assert parse_sizes("users=5, carts=7") == {"users": 5, "products": 194, "carts": 7}
    for bad in ("users", "todos=3", "users=x", "users=-1"):
        with pytest.raises(ValueError):
            parse_sizes(bad)
    with pytest.raises(ValueError, match="carts need"):
        generate_catalog(users=0, products=5, carts=3)
