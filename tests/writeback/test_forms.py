"""The emulator's form and list pages, over plain HTTP (no browser needed)."""

from __future__ import annotations

import requests

from connector.writeback.install import install_fields


def test_form_needs_credentials_and_challenges_for_basic(emu, accounts):
    response = requests.get(
        f"{emu.url}/customer_account.do", params={"sys_id": accounts[0]}, timeout=10
    )

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_form_refuses_non_admins(emu, accounts):
    response = requests.get(
        f"{emu.url}/customer_account.do",
        params={"sys_id": accounts[0]},
        auth=(emu.integration_user, emu.integration_password),
        timeout=10,
    )

    assert response.status_code == 403


def test_form_follows_layout_positions_after_the_base_fields(
    emu, accounts, make_settings
):
    install_fields(make_settings())
    rows = [r for r in emu.instance.rows("sys_ui_element")
            if r["element"] == "u_nps"]  # fmt: skip
    emu.instance.update("sys_ui_element", rows[0]["sys_id"], {"position": "-1"})

    page = requests.get(
        f"{emu.url}/customer_account.do",
        params={"sys_id": accounts[0]},
        auth=(emu.admin_user, emu.admin_password),
        timeout=10,
    ).text

    order = [page.index(f'id="customer_account.{f}"') for f in
             ("number", "name", "u_nps", "u_health_score")]  # fmt: skip
    assert order == sorted(order)


def test_unknown_record_is_404(emu):
    response = requests.get(
        f"{emu.url}/customer_account.do",
        params={"sys_id": "0" * 32},
        auth=(emu.admin_user, emu.admin_password),
        timeout=10,
    )

    assert response.status_code == 404
