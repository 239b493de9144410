// Names for the schemas the frontend uses; everything else is in the generated files
// (`paths` and `operations` there describe every route, parameter, header and status).
// Only this file is written by hand; `make clients` regenerates the other two.
import type { components as QueryComponents, paths as QueryApiPaths } from "./query-api";
import type { components as RerunComponents, paths as RerunApiPaths } from "./rerun-api";

export type { QueryApiPaths, RerunApiPaths };

type QuerySchemas = QueryComponents["schemas"];
type RerunSchemas = RerunComponents["schemas"];

/** One row of `GET /analyses` (the same eight fields the old backend returned). */
export type AnalysisListItem = QuerySchemas["AnalysisListItem"];
/** `GET /analyses/{analysis_id}`: a row plus the report. */
export type AnalysisDetail = QuerySchemas["AnalysisDetail"];
/** Body of `POST /analyses` on rerun-api. */
export type CreateAnalysisRequest = RerunSchemas["CreateAnalysisRequest"];
/** 201 answer of `POST /analyses`. */
export type AnalysisCreated = RerunSchemas["AnalysisCreated"];
/** 202 answer of `POST /analyses/{analysis_id}/rerun`. */
export type RerunAccepted = RerunSchemas["RerunAccepted"];
/** 200 answer of `POST /analyses/{analysis_id}/cancel`. */
export type CancelAccepted = RerunSchemas["CancelAccepted"];
/** Every 4xx/503 body of both APIs: `{ error: { code, message, param?, request_id? } }`. */
export type ApiError = QuerySchemas["ErrorBody"] | RerunSchemas["ErrorBody"];
/** `error.code` of every error body: one of the codes either API answers. */
export type ErrorCode = QuerySchemas["ErrorCode"];
