// The routes this client calls, checked at compile time against the generated OpenAPI types: when the server
// drops or moves one, `npm run gen` makes the build fail here instead of a call failing at run time. Path
// parameter names are ignored ({workflow_id} and {workflowId} are the same route), and nothing else in the
// generated document is relied on, so a richer document (typed responses, error envelopes) changes nothing.

import type { paths } from "./generated/openapi.js";

type Normalize<P extends string> = P extends `${infer Head}{${string}}${infer Tail}` ? `${Head}{}${Normalize<Tail>}` : P;

/** Every route of the server's document, with its path parameters as `{}`. */
export type Endpoint = Normalize<keyof paths & string>;

type Used =
  | "/api/v1/workflows"
  | "/api/v1/workflows/{}"
  | "/api/v1/workflows/{}/publish"
  | "/api/v1/workflows/validate"
  | "/api/v1/workflows/{}/estimate"
  | "/api/v1/workflows/{}/execute"
  | "/api/v1/workflows/executions"
  | "/api/v1/workflows/executions/{}"
  | "/api/v1/workflows/executions/{}/poll"
  | "/api/v1/workflows/executions/{}/events"
  | "/api/v1/workflows/executions/{}/cancel"
  | "/api/v1/uploads"
  | "/api/v1/files/{}"
  | "/api/v1/usage"
  | "/api/v1/account"
  | "/api/v1/nodes";

type Missing = Exclude<Used, Endpoint>;

/** Fails to compile (naming the route) when a route the client calls is not in the document. */
export const ROUTES_CHECKED: [Missing] extends [never] ? true : { missing: Missing } = true;
