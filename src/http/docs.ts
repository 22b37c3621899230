import { Hono } from "hono";
import css from "swagger-ui-dist/swagger-ui.css" with { type: "text" };
// Imported as text so `bun build --compile` embeds them: the docs work offline and from the binary.
import bundle from "swagger-ui-dist/swagger-ui-bundle.js" with { type: "text" };

const INIT = `window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true, persistAuthorization: true });`;

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Eventful monolith API docs</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>`;

const LONG_CACHE = { "cache-control": "public, max-age=86400" };

/** docsPage serves Swagger UI for `/openapi.json` from the installed swagger-ui-dist package, never a CDN. */
export function docsPage(): Hono {
  const docs = new Hono();
  docs.get("/", (c) => c.html(PAGE));
  docs.get("/swagger-ui.css", (c) => c.body(css, 200, { "content-type": "text/css; charset=utf-8", ...LONG_CACHE }));
  docs.get("/swagger-ui-bundle.js", (c) => c.body(bundle, 200, { "content-type": "text/javascript; charset=utf-8", ...LONG_CACHE }));
  docs.get("/init.js", (c) => c.body(INIT, 200, { "content-type": "text/javascript; charset=utf-8" }));
  return docs;
}
