"""The `analyses` collection as every service shares it.

What is here is what more than one service needs, or what keeps a rule of the data that
no service may bend on its own:
- `document`: the analysis document (field names, ids, list projection, conversions);
- `status_table`: which move may follow which status;
- `write_path`: `stage_write`, the one function every analysis write goes through, in
  rerun-api (async client) and the analyzer (sync client) alike;
- `change_markers`: the per-user marker every list-visible write bumps, and its active set;
- `client`: the Firestore clients and the one list query (query-api and the benchmarks);
- `page_tokens`: the signed list cursor, the position `client.list_query` resumes from;
- `read_costs`: document reads counted per route or job, for every reader.

What one service alone does with the collection lives in that service:
rerun_api.commands and rerun_api.lifecycle (create, rerun, cancel, delete, sweep),
analyzer.job_store (claim, progress, complete, fail), query_api.reads (list, detail).
"""
