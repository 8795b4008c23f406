//! Interactive API documentation at [`DOCS_PATH`]: a page that runs
//! RapiDoc on the OpenAPI document at [`crate::api::OPENAPI_PATH`].
//!
//! RapiDoc is vendored (`portal-api/assets/rapidoc/`, with its licence and
//! checksum) and compiled into the binary: the utoipa UI crates either
//! download Swagger UI at build time (utoipa-swagger-ui) or write a page
//! that loads the viewer from a CDN (utoipa-rapidoc, -redoc, -scalar), and
//! this project builds and serves with no network.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

/// Where the documentation page is served.
pub const DOCS_PATH: &str = "/docs";
/// Where its script is served.
pub const SCRIPT_PATH: &str = "/docs/rapidoc-min.js";
/// The vendored RapiDoc release.
pub const RAPIDOC_VERSION: &str = "9.3.8";

const RAPIDOC_JS: &[u8] = include_bytes!("../assets/rapidoc/rapidoc-min.js");

/// Only this origin: the page, its script and the OpenAPI document. Styles
/// inline because RapiDoc writes its own; `data:` images for its icons.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; font-src 'self'; connect-src 'self'; \
                   frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Dialcast portal API</title>
<script type="module" src="/docs/rapidoc-min.js"></script>
</head>
<body>
<rapi-doc spec-url="/api-docs/openapi.json"
          render-style="read"
          show-header="false"
          allow-authentication="true"
          allow-server-selection="false"
          regular-font="system-ui, -apple-system, 'Segoe UI', sans-serif"
          mono-font="ui-monospace, 'DejaVu Sans Mono', monospace"></rapi-doc>
</body>
</html>
"#;

async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            // The file changes only with the binary; a day is plenty.
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        RAPIDOC_JS,
    )
}

/// The two routes, for any router state.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(DOCS_PATH, get(page))
        .route(SCRIPT_PATH, get(script))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_local_assets() {
        assert!(PAGE.contains(&format!("src=\"{SCRIPT_PATH}\"")));
        assert!(PAGE.contains(&format!("spec-url=\"{}\"", crate::api::OPENAPI_PATH)));
        assert!(!PAGE.contains("https://"), "{PAGE}");
        assert!(!PAGE.contains("http://"), "{PAGE}");
    }

    #[test]
    fn the_vendored_script_is_the_pinned_release() {
        let head = std::str::from_utf8(&RAPIDOC_JS[..200]).unwrap_or("");
        assert!(
            head.contains(&format!("RapiDoc {RAPIDOC_VERSION}")),
            "{head}"
        );
    }
}
