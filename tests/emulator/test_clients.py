"""Third-party clients drive the emulator unchanged: pysnow (HTTP), PySNC (HTTPS)."""

from __future__ import annotations

from collections.abc import Iterator

import pysnc
import pysnow
import pytest
import requests

from connector.emulator.server import EmulatorServer

from .helpers import CASE, seed_cases


def test_pysnow_pages_gets_and_updates(empty_emulator: EmulatorServer) -> None:
    ids = seed_cases(empty_emulator, 25)
    host = empty_emulator.url.split("://", 1)[1]
    client = pysnow.Client(host=host, user="admin", password="admin", use_ssl=False)
    cases = client.resource(api_path=f"/table/{CASE}")

    paged: list[str] = []
    for offset in (0, 10, 20):
        response = cases.get(
            query="ORDERBYsys_id", limit=10, offset=offset, fields=["sys_id"]
        )
        paged += [r["sys_id"] for r in response.all()]
    one = cases.get(query={"number": "CS0000005"}).one()
    updated = cases.update(
        query={"number": "CS0000005"}, payload={"short_description": "via pysnow"}
    )
    built = pysnow.QueryBuilder().field("priority").less_than_or_equal(1)
    low = [r["number"] for r in cases.get(query=built).all()]

    assert paged == ids
    assert one["short_description"] == "case 5"
    assert updated["short_description"] == "via pysnow"
    assert updated["sys_mod_count"] == "1"
    assert sorted(low) == [f"CS{i:07d}" for i in (4, 8, 12, 16, 20, 24)]


@pytest.fixture
def tls_emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(accounts=0, tls=True) as emu:
        yield emu


def test_tls_is_verifiable_with_the_generated_ca(tls_emulator: EmulatorServer) -> None:
    url = f"{tls_emulator.url}/api/now/table/{CASE}"

    trusted = requests.get(url, auth=("admin", "admin"), verify=tls_emulator.ca_file)

    assert tls_emulator.url.startswith("https://")
    assert trusted.status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url, auth=("admin", "admin"), timeout=10)


def test_pysnc_queries_pages_updates_and_batches(
    tls_emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override a session's
    # ``verify`` (PySNC sets it there), so clear them to trust our CA.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    ids = seed_cases(tls_emulator, 23)
    client = pysnc.ServiceNowClient(
        tls_emulator.url, ("admin", "admin"), verify=tls_emulator.ca_file
    )

    gr = client.GlideRecord(CASE, batch_size=5)
    gr.add_query("active", "true")
    gr.query()
    active = [r.sys_id for r in gr]

    one = client.GlideRecord(CASE)
    assert one.get(ids[0])
    account_name = one.get_display_value("account")
    one.short_description = "via pysnc"
    one.update()

    many = client.GlideRecord(CASE, batch_size=5)
    many.add_query("priority", "1")
    many.query()
    for record in many:
        record.short_description = "bulk"
    assert many.update_multiple()

    expected_active = [s for i, s in enumerate(ids, start=1) if i % 3]
    assert active == expected_active
    assert account_name == "Acme Corp"
    rows = {r["sys_id"]: r for r in tls_emulator.instance.rows(CASE)}
    assert rows[ids[0]]["short_description"] == "via pysnc"
    bulk = sorted(
        r["number"] for r in rows.values() if r["short_description"] == "bulk"
    )
    assert bulk == [f"CS{i:07d}" for i in (4, 8, 12, 16, 20)]
