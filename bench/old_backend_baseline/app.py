"""The old backend's fixed endpoint: the list endpoint its debugging guide calls fixed,
as the benchmark's baseline.

This is the guide's Fix 1 (where + order_by + limit; its `offset`
parameter is read and, as in the guide, never applied) with Fix 3's response (only the
list fields), and nothing else: no auth, no ETag, no projection (the whole documents,
10 KB text included, come over the wire and are dropped in Python). Served the way the
guide says, by gunicorn with one sync worker:

    FIRESTORE_EMULATOR_HOST=... GOOGLE_CLOUD_PROJECT=... \
        gunicorn -w 1 -b 127.0.0.1:5555 --chdir bench/old_backend_baseline app:app
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, Response, jsonify, request
from google.cloud import firestore

app = Flask(__name__)
db = firestore.Client(project=os.environ.get("GOOGLE_CLOUD_PROJECT", "demo-flokraft"))


@app.route("/analyses")
def get_analyses() -> Response:
    user_id = request.args.get("user_id")
    analysis_type = request.args.get("analysis_type", "couple")
    limit = int(request.args.get("limit", 50))  # Default 50
    offset = int(request.args.get("offset", 0))  # noqa: F841  (read, never used: as in the guide)

    # Any: the guide reassigns one name from collection to query.
    query: Any = db.collection("analyses")

    if user_id:
        query = query.where("user_id", "==", user_id)
    if analysis_type:
        query = query.where("analysis_type", "==", analysis_type)

    query = query.order_by("timestamp", direction=firestore.Query.DESCENDING)
    query = query.limit(limit)

    analyses = query.get()

    results = []
    for analysis in analyses:
        results.append(
            {
                "id": analysis.id,
                "timestamp": analysis.get("timestamp"),
                "dance_type": analysis.get("dance_type"),
                "dancers": analysis.get("dancers"),
                "analysis_type": analysis.get("analysis_type"),
                "processed": analysis.get("processed") or False,
                "status": analysis.get("status"),
                "total_score": analysis.get("total_score"),
            }
        )

    del analyses
    return jsonify(results)
