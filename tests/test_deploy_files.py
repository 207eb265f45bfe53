"""The compose file: a health check on the readiness route and the data volume."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_compose_has_a_health_check_and_a_data_volume() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    service = compose["services"]["rhythm"]
    check = service["healthcheck"]
    assert "/api/v1/health/ready" in " ".join(check["test"])
    assert check["interval"] and check["retries"] >= 1
    volume = next(v for v in service["volumes"] if v.endswith(":/data"))
    assert volume.split(":")[0] in compose["volumes"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "RHYTHM_DATA_DIR=/data" in dockerfile and 'VOLUME ["/data"]' in dockerfile
    # the port the health check calls is the one the image serves on
    assert "RHYTHM_PORT=8080" in dockerfile and "127.0.0.1:8080" in " ".join(check["test"])
