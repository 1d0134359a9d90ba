"""Exactly the AWS credentials a test wants boto3 to find: no files, no instance metadata."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudfits.providers.registry import reset_registry


def use_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, key_id: str, secret: str | None
) -> None:
    """Point boto3 at ``key_id`` and ``secret`` only (``secret=None``: no credentials
    at all), then drop the cached provider clients, which read the environment once."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    if secret is None:
        monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    else:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    reset_registry()
