"""Idempotency records carry `expires_at`, and the TTL policy that deletes them is
deployed as code: the gcloud command and the Config Connector resource in docs/deploy.md
name the collection and field rerun-api actually writes."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta

import httpx
import yaml
from google.cloud import firestore

from flokraft_devstack.issuer import TestIssuer
from flokraft_devstack.processes import ManagedProcess
from flokraft_devstack.settings import REPO_ROOT
from rerun_api.settings import RerunApiSettings
from tests.rerun_api.support import video_of

DEPLOY_DOC = (REPO_ROOT / "docs" / "deploy.md").read_text()


def ttl_section() -> str:
    heading = "## Firestore TTL for idempotency records"
    assert heading in DEPLOY_DOC
    return DEPLOY_DOC.split(heading, 1)[1].split("\n## ", 1)[0]


def test_the_ttl_policy_names_what_rerun_api_writes(
    rerun_api: ManagedProcess, issuer: TestIssuer
) -> None:
    settings = RerunApiSettings()
    section = ttl_section()
    command = re.search(
        r"gcloud firestore fields ttls update (\S+) \\\s+--collection-group=(\S+) .*--enable-ttl",
        section,
    )
    assert command, "docs/deploy.md gives the gcloud command"
    field, collection = command.groups()
    assert collection == settings.idempotency_collection

    resource = yaml.safe_load(section.split("```yaml", 1)[1].split("```", 1)[0])
    assert resource["kind"] == "FirestoreField"
    assert resource["apiVersion"] == "firestore.cnrm.cloud.google.com/v1alpha1"
    assert resource["spec"]["collectionGroup"] == collection
    assert resource["spec"]["resourceID"] == field
    assert resource["spec"]["ttlConfig"] == {"enabled": True}

    # The records rerun-api writes carry that field as a Timestamp (TTL ignores any other
    # type), one IDEMPOTENCY_TTL_SECONDS after the request.
    user = f"ttl-{uuid.uuid4().hex[:8]}"
    response = httpx.post(
        rerun_api.url + "/analyses",
        json={
            "video_url": video_of(user),
            "dance_type": "salsa",
            "dancers": ["a"],
            "analysis_type": "solo",
        },
        headers={**issuer.headers(user), "Idempotency-Key": uuid.uuid4().hex},
    )
    assert response.status_code == 201
    db = firestore.Client(project=rerun_api.env["GOOGLE_CLOUD_PROJECT"])
    try:
        records = [s.to_dict() or {} for s in db.collection(collection).stream()]
    finally:
        db.close()
    assert records
    for record in records:
        expires = record[field]
        assert isinstance(expires, datetime)
        lifetime = expires - record["created_at"]
        assert lifetime == timedelta(seconds=settings.idempotency_ttl_seconds)
