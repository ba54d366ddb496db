"""WORM and the signed archive catalog: locks after the delay (read-only on disk), retention that
can be extended but not shortened (compliance) or only with a logged override (governance),
approvers for delete, HMAC-signed manifests that detect tampering.

Real Parquet files under ``_archive/``, the real guard, removal path and CLI; no mocks.
"""

from __future__ import annotations

import json
import os
import uuid

import pytest

from helpers_perpetual import KEY_ENV, archive_file, journal, make_archive, mdcsql, table_rows, writable
from mdcsql.errors import ConfigError, IntegrityError
from mdcsql.lifecycle import archive_catalog, worm
from mdcsql.lifecycle.guard import Override, ProtectedError, check_removable
from mdcsql.lifecycle.removal import remove_files

KEY = "test-hmac-key-0123456789"
DESIGN_KEYS = {"id", "path", "type", "symbols", "date_range", "event_count", "size_bytes", "checksum",
               "created_at", "archive_reason", "retention_until", "immutable", "schema_version"}


def storage(mode: str = "governance", **worm_extra) -> dict:
    return {"Worm": {"Enabled": True, "LockDelay": "1d", "ComplianceMode": mode, **worm_extra},
            "Archive": {"MinRetentionYears": 7, "ApproversForDelete": ["carol", "dave"]},
            "Catalog": {"SignManifests": True, "SigningKeyEnv": KEY_ENV}}


@pytest.fixture(autouse=True)
def key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)


def archived(tmp_path, mode="governance", **worm_extra):
    """An archive with one archived Parquet file, entered on 2024-02-01 (retention until 2031)."""
    root = make_archive(tmp_path, storage(mode, **worm_extra))
    rel = archive_file(root, sidecar=True)
    entry = archive_catalog.add_entry(root, rel, created_at="2024-02-01")
    return root, rel, entry


def test_an_entry_has_the_designs_keys_and_describes_its_file(tmp_path):
    root = make_archive(tmp_path, storage())
    rel = archive_file(root, symbol="BRK/B", n=40)                # no sidecar: read from the Parquet
    e = archive_catalog.add_entry(root, rel, created_at="2024-02-01T00:00:00Z")
    assert set(e) == DESIGN_KEYS | {"worm"}
    assert uuid.UUID(e["id"]).version == 4
    assert e["path"] == rel and e["type"] == "Trade" and e["symbols"] == ["BRK/B"]
    assert e["date_range"] == {"start": "2024-01-15", "end": "2024-01-15"} and e["event_count"] == 40
    import hashlib
    data = (root / rel).read_bytes()
    assert e["checksum"] == "sha256:" + hashlib.sha256(data).hexdigest() and e["size_bytes"] == len(data)
    assert e["archive_reason"] == "Regulatory" and e["immutable"] is True and e["schema_version"] == 1
    assert e["created_at"] == "2024-02-01T00:00:00Z" and e["retention_until"] == "2031-02-01T00:00:00Z"
    doc = json.loads((root / "_archive/regulatory/manifest.json").read_text())
    assert doc["catalog"]["version"] == "1.0" and doc["catalog"]["entries"] == [e]
    assert doc["signature"]["alg"] == "HMAC-SHA256" and len(doc["signature"]["value"]) == 64
    # re-adding keeps the id (the migration may land the same file again after a crash)
    assert archive_catalog.add_entry(root, rel, created_at="2024-03-01")["id"] == e["id"]
    listed = json.loads(mdcsql("archive", "list", root, "--json", env={KEY_ENV: KEY}).stdout)
    assert [x["id"] for x in listed["catalog"]["entries"]] == [e["id"]]


def test_files_become_read_only_after_the_lock_delay_as_of(tmp_path):
    root, rel, entry = archived(tmp_path)
    data, side = root / rel, root / (rel + ".manifest.json")
    out = mdcsql("archive", "lock", root, "--as-of", "2024-02-01T23:59:59Z", env={KEY_ENV: KEY}).stdout
    assert "0 file(s) locked" in out and writable(data) and writable(side)

    out = mdcsql("archive", "lock", root, "--as-of", "2024-02-02", env={KEY_ENV: KEY}).stdout
    assert f"locked {rel}" in out and "1 file(s) locked" in out
    assert not writable(data) and not writable(side)
    locked = archive_catalog.find_entry(root, rel)
    assert locked["worm"]["locked_at"] == "2024-02-02T00:00:00Z" and locked["worm"]["mode"] == "governance"

    assert worm.lock_due(root, "2024-03-01") == []                # idempotent
    os.chmod(data, 0o644)                                         # someone restores the write bit
    worm.lock_due(root, "2024-03-01")
    assert not writable(data)
    [row] = table_rows(root, "archive_entries", "id")
    assert row[0] == entry["id"] and str(row[14]) == "2024-02-02 00:00:00" and row[15] == "governance"


def test_governance_lock_needs_an_override_and_every_approver(tmp_path):
    root, rel, _ = archived(tmp_path)
    worm.lock_due(root, "2024-02-02")
    with pytest.raises(ProtectedError, match="governance lock until 2031-02-01") as exc:
        remove_files(root, [rel], action="retention", reason="old", as_of="2025-01-01")
    assert exc.value.protections[0].kind == "worm"
    with pytest.raises(ProtectedError, match="lacks the approval of dave"):
        remove_files(root, [rel], action="manual", reason="court order", as_of="2025-01-01",
                     override=Override("erin", "court order 17", approved_by=("carol",)))
    assert (root / rel).exists()
    assert [r["protections"][0]["kind"] for r in journal(root, "refusals")] == ["worm", "approvers"]

    proc = mdcsql("rm", root, rel, "--reason", "court order", "--by", "erin", "--override-reason",
                  "court order 17", "--approved-by", "carol", "--approved-by", "dave", env={KEY_ENV: KEY})
    assert f"deleted {rel}" in proc.stdout and not (root / rel).exists()
    [d] = journal(root, "deletions")
    assert (d["override_by"], d["override_reason"], d["approved_by"]) == ("erin", "court order 17", ["carol", "dave"])
    assert d["sha256"] and d["symbol"] == "AAPL" and d["tier"] == "archive"
    assert journal(root, "overrides")[0]["paths"] == [{"path": rel, "retention_until": "2031-02-01T00:00:00Z"}]
    assert archive_catalog.load_manifests(root)[0].entries == []  # the entry goes with the file
    assert archive_catalog.verify(root) == []


def test_compliance_lock_cannot_be_lifted_until_retention_ends(tmp_path):
    root, rel, _ = archived(tmp_path, mode="compliance")
    full = Override("erin", "please", approved_by=("carol", "dave"))
    assert check_removable(root, [rel], action="compaction", as_of="2024-02-01T12:00:00Z")  # not locked yet
    for when in ("2024-02-02", "2031-01-31"):                     # locked by delay, even before lock_due ran
        with pytest.raises(ProtectedError, match="compliance lock until 2031-02-01.*nothing lifts it"):
            check_removable(root, [rel], action="migration", as_of=when, override=full)
    assert check_removable(root, [rel], action="retention", as_of="2031-02-01")[0]["overridden"] is False
    # the mode in force when the lock engaged stays, whatever the setting says later
    worm.lock_due(root, "2024-02-02")
    cfg = json.loads((root / "_catalog/config.json").read_text())
    cfg["Storage"]["Worm"]["ComplianceMode"] = "governance"
    (root / "_catalog/config.json").write_text(json.dumps(cfg))
    with pytest.raises(ProtectedError, match="compliance lock"):
        check_removable(root, [rel], action="manual", as_of="2025-01-01", override=full)


def test_retention_extends_but_never_shortens_in_compliance_mode(tmp_path):
    root, rel, entry = archived(tmp_path, mode="compliance")
    worm.lock_due(root, "2024-02-02")
    e = worm.extend(root, rel, "2035-06-30", by="ops", now="2024-05-01")
    assert e["retention_until"] == "2035-06-30T00:00:00Z"
    with pytest.raises(ProtectedError, match="compliance mode: retention can never be shortened"):
        worm.extend(root, entry["id"], "2032-01-01", by="ops", override=Override("ops", "mistake"))
    assert journal(root, "refusals")[-1]["action"] == "retention-change"
    out = mdcsql("archive", "extend", root, rel, "--until", "never", "--by", "legal", env={KEY_ENV: KEY}).stdout
    assert "retention until indefinite" in out
    proc = mdcsql("archive", "extend", root, rel, "--until", "2099-01-01", "--by", "legal", check=False,
                  env={KEY_ENV: KEY})
    assert proc.returncode == 1 and "never be shortened" in proc.stderr  # any date is shorter than indefinite
    history = archive_catalog.find_entry(root, rel)["worm"]["history"]
    assert [(h["kind"], h["by"], h["to"]) for h in history] == [
        ("extend", "ops", "2035-06-30T00:00:00Z"), ("extend", "legal", None)]
    changes = table_rows(root, "archive_retention_changes", "changed_at")
    assert [(c[1], c[3], c[6]) for c in changes] == [(rel, "ops", "extend"), (rel, "legal", "extend")]


def test_governance_shortening_needs_a_logged_override_and_allow_extend_false_refuses_changes(tmp_path):
    root, rel, _ = archived(tmp_path)
    with pytest.raises(ProtectedError, match="needs an override"):
        worm.extend(root, rel, "2030-01-01", by="ops")
    e = worm.extend(root, rel, "2030-01-01", by="ops", override=Override("cfo", "policy change 12"))
    assert e["retention_until"] == "2030-01-01T00:00:00Z"
    [h] = e["worm"]["history"]
    assert (h["kind"], h["override_reason"], h["override_by"], h["from"]) == (
        "shorten", "policy change 12", "cfo", "2031-02-01T00:00:00Z")

    root2, rel2, _ = archived(tmp_path / "b", AllowExtend=False)
    with pytest.raises(ProtectedError, match="AllowExtend is false"):
        worm.extend(root2, rel2, "2040-01-01", by="ops")


def test_verify_detects_a_changed_byte_and_a_changed_json_field(tmp_path):
    root, rel, _ = archived(tmp_path)
    archive_file(root, symbol="MSFT")
    archive_catalog.add_entry(root, "_archive/regulatory/live/Trade/MSFT/2024-01~sim~equity.parquet")
    env = {KEY_ENV: KEY}
    assert "2 entries, signatures and checksums verified" in mdcsql("archive", "verify", root, env=env).stdout

    data = root / rel
    original = data.read_bytes()
    data.write_bytes(original[:100] + bytes([original[100] ^ 1]) + original[101:])
    proc = mdcsql("archive", "verify", root, check=False, env=env)
    assert proc.returncode == 1 and f"FAIL {rel}: checksum" in proc.stderr and "MSFT" not in proc.stderr
    data.write_bytes(original)

    manifest = root / "_archive/regulatory/manifest.json"
    doc = json.loads(manifest.read_text())
    doc["catalog"]["entries"][0]["retention_until"] = "2024-03-01T00:00:00Z"      # "expire" it early
    manifest.write_text(json.dumps(doc, indent=2))
    proc = mdcsql("archive", "verify", root, check=False, env=env)
    assert proc.returncode == 1 and "signature does not match" in proc.stderr
    # a tampered manifest protects its files and is not built upon
    with pytest.raises(ProtectedError, match="signature does not match"):
        remove_files(root, [rel], action="retention", reason="expired", as_of="2025-01-01")
    with pytest.raises(IntegrityError, match="not changing it"):
        archive_catalog.add_entry(root, rel)
    proc = mdcsql("archive", "verify", root, check=False, env={KEY_ENV: "another key"})
    assert proc.returncode == 1 and "signed with key" in proc.stderr


def test_signing_required_without_a_key_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV)
    root = make_archive(tmp_path, storage())
    rel = archive_file(root)
    with pytest.raises(ConfigError, match=f"SignManifests is true but there is no signing key: environment "
                                          f"variable {KEY_ENV} is unset"):
        archive_catalog.add_entry(root, rel)
    proc = mdcsql("archive", "add", root, rel, check=False, env={KEY_ENV: ""})
    assert proc.returncode == 1 and proc.stderr.startswith("error: Storage.Catalog.SignManifests")


def test_a_key_file_signs_too(tmp_path, monkeypatch):
    (tmp_path / "keys").mkdir()
    root = make_archive(tmp_path, {"Catalog": {"SignManifests": True, "SigningKeyFile": "../keys/hmac.key"}})
    (tmp_path / "keys/hmac.key").write_text("file-key\n")
    rel = archive_file(root, reason="research")
    archive_catalog.add_entry(root, rel)
    doc = json.loads((root / "_archive/research/manifest.json").read_text())
    assert doc["signature"]["key_id"].startswith("sha256:") and archive_catalog.verify(root) == []
    e = doc["catalog"]["entries"][0]
    assert e["archive_reason"] == "Research" and e["immutable"] is False and e["retention_until"] is None


def test_protection_takes_naive_utc_datetimes_too(tmp_path):
    from datetime import datetime
    root, rel, _ = archived(tmp_path, mode="compliance")
    entry = archive_catalog.find_entry(root, rel)
    pol = worm.worm_policy(archive_catalog.settings_of(root))
    assert worm.protection(entry, pol, datetime(2024, 2, 1, 12)) is None
    assert worm.protection(entry, pol, datetime(2024, 2, 2))["until"] == "2031-02-01T00:00:00Z"
