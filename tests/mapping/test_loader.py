"""Mapping files: the shipped ones load; every problem in a bad folder is listed."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.errors import MappingError
from connector.mapping.loader import load_mappings
from connector.store.models import CANONICAL_MODELS

SHIPPED = Path(__file__).resolve().parents[2] / "mappings"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_mappings_cover_every_canonical_table() -> None:
    mappings = load_mappings(SHIPPED)

    assert sorted(m.target for m in mappings) == sorted(CANONICAL_MODELS)
    usage = next(m for m in mappings if m.source == "sn_pss_core_entitlement_usage")
    assert usage.fields["account"].field == "entitlement.account"
    team = next(m for m in mappings if m.target == "team_member")
    assert team.fields["responsibility_name"].field == "responsibility.name"


def test_every_problem_in_every_file_is_listed(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yaml",
        "source: customer_account\ntarget: nope\nfields: {name: name}\n",
    )
    write(
        tmp_path,
        "b.yaml",
        "source: sn_customerservice_case\ntarget: case\nfields:\n"
        "  nonsense: number\n"
        "  priority: {field: priority, type: integr}\n"
        "  opened_at: {field: opened_at, type: string}\n"
        "  state: {field: state, type: choice, label: true}\n"
        "  state_label: number\n"
        "defaults: {missing_col: 1}\n",
    )
    write(tmp_path, "c.yaml", "target: account\nfields: {name: name}\nbogus: 1\n")
    write(
        tmp_path,
        "d.yaml",
        "source: x\ntarget: account\nfields:\n  name: a\n  name: b\n",
    )

    with pytest.raises(MappingError) as caught:
        load_mappings(tmp_path)

    text = str(caught.value)
    assert "a.yaml: target: unknown table 'nope'" in text
    assert "b.yaml: fields.nonsense: table 'case' has no column 'nonsense'" in text
    assert "b.yaml: fields.priority.type:" in text and "'integr'" in text
    assert "b.yaml: fields.opened_at.type: column case.opened_at holds datetime" in text
    assert "b.yaml: fields.state_label: column 'state_label' is already filled" in text
    assert "b.yaml: defaults.missing_col: expected a column listed under fields" in text
    assert "c.yaml: source: required key is missing" in text
    assert "c.yaml: bogus: unknown key" in text
    assert "d.yaml: line 5: not valid YAML: duplicate key 'name'" in text
    assert len(caught.value.problems) == 9


def test_two_mappings_for_one_table_and_unknown_selection(tmp_path: Path) -> None:
    write(
        tmp_path,
        "one.yaml",
        "source: customer_account\ntarget: account\nfields: {name: name}\n",
    )
    write(
        tmp_path,
        "two.yaml",
        "source: core_company\ntarget: account\nfields: {name: name}\n",
    )

    with pytest.raises(MappingError) as caught:
        load_mappings(tmp_path, tables=["ghost"])

    messages = [str(p) for p in caught.value.problems]
    assert any(
        "two.yaml: target: table 'account' is already filled by one.yaml" in m
        for m in messages
    )
    assert any("--table: no mapping named 'ghost'" in m for m in messages)


def test_selection_by_name_source_or_target(tmp_path: Path) -> None:
    mappings = load_mappings(SHIPPED, tables=["case", "sys_user", "asmt_metric"])

    assert sorted(m.name for m in mappings) == [
        "asmt_metric",
        "sn_customerservice_case",
        "sys_user",
    ]


def test_filter_with_javascript_or_orderby_is_refused(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yaml",
        "source: customer_account\ntarget: account\nfields: {name: name}\n"
        'filter: "sys_updated_on>=javascript:gs.daysAgo(3)"\n',
    )
    write(
        tmp_path,
        "b.yaml",
        "source: sys_user\ntarget: sn_user\nfields: {name: name}\n"
        "filter: active=true^ORDERBYname\n",
    )

    with pytest.raises(MappingError) as caught:
        load_mappings(tmp_path)

    text = str(caught.value)
    assert "a.yaml: filter: must not use javascript:" in text
    assert "b.yaml: filter: must not contain ORDERBY" in text


def test_empty_or_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match=r"no \*.yaml mapping files"):
        load_mappings(tmp_path)
    with pytest.raises(MappingError, match="mappings folder not found"):
        load_mappings(tmp_path / "absent")
