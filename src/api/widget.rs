//! The embeddable map widget: the page at `/widget`, its own scripts and
//! styles (`widget/src/`, ours), and MapLibre GL JS (`widget/node_modules/`,
//! installed by `npm ci --prefix widget`, never committed). Debug builds
//! read the files from disk; release builds carry them inside the binary,
//! so a deployment is the one file. Nothing is loaded from a CDN.
//!
//! These are pages, not API operations, so they are not in the OpenAPI
//! document.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, get, web};
use rust_embed::{EmbeddedFile, RustEmbed};
use serde::Serialize;

use super::AppState;
use super::problem::ApiError;

/// Our own files. `index.html` is served only through [`page`], with the
/// configuration filled in.
#[derive(RustEmbed)]
#[folder = "widget/src/"]
#[include = "*.js"]
#[include = "*.css"]
#[include = "index.html"]
struct Own;

/// MapLibre GL JS's build for pages with a Content-Security-Policy (no
/// `blob:` workers, no `eval`). Missing when `npm ci --prefix widget` was
/// not run before the build; the page then says so in the server's log.
#[derive(RustEmbed)]
#[folder = "widget/node_modules/maplibre-gl/dist/"]
#[include = "maplibre-gl-csp.js"]
#[include = "maplibre-gl-csp-worker.js"]
#[include = "maplibre-gl.css"]
#[include = "LICENSE.txt"]
#[allow_missing = true]
struct Vendor;

/// Whether MapLibre's files are there; `startup` warns when not.
pub fn vendor_installed() -> bool {
    Vendor::get("maplibre-gl-csp.js").is_some()
}

/// What an operator configures about the widget.
#[derive(Debug, Clone, Default)]
pub struct WidgetSettings {
    basemap: Option<Basemap>,
}

/// A raster tile server for the base map.
#[derive(Debug, Clone, Serialize)]
struct Basemap {
    /// `https://host/{z}/{x}/{y}.png`.
    url: String,
    attribution: String,
    /// `scheme://host[:port]`, for the page's Content-Security-Policy.
    #[serde(skip)]
    origin: String,
}

impl WidgetSettings {
    /// Checks the base map's URL template: http(s), with `{z}`, `{x}` and
    /// `{y}`, and nothing that could break out of a policy or a page.
    pub fn new(basemap_url: Option<&str>, attribution: Option<&str>) -> anyhow::Result<Self> {
        let Some(url) = basemap_url.map(str::trim).filter(|url| !url.is_empty()) else {
            return Ok(Self::default());
        };
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(|| {
                anyhow::anyhow!("the base map URL must start with https:// or http://")
            })?;
        let host = rest.split('/').next().unwrap_or_default();
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
        if !host_ok {
            anyhow::bail!("the base map URL has no valid host");
        }
        if url
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | ';' | '<' | '>'))
        {
            anyhow::bail!("the base map URL may not contain spaces, quotes, `;`, `<` or `>`");
        }
        for part in ["{z}", "{x}", "{y}"] {
            if !url.contains(part) {
                anyhow::bail!("the base map URL must contain {{z}}, {{x}} and {{y}}");
            }
        }
        let scheme_len = url.len() - rest.len();
        Ok(Self {
            basemap: Some(Basemap {
                url: url.to_owned(),
                attribution: attribution.unwrap_or_default().trim().to_owned(),
                origin: format!("{}{host}", &url[..scheme_len]),
            }),
        })
    }

    /// The page's Content-Security-Policy: scripts, styles and the worker
    /// from here only (MapLibre sets styles inline), data from here and
    /// the base map's server, and framing by any site, since being
    /// embedded is the point.
    fn policy(&self) -> String {
        let extra = self
            .basemap
            .as_ref()
            .map(|basemap| format!(" {}", basemap.origin))
            .unwrap_or_default();
        format!(
            "default-src 'none'; script-src 'self'; worker-src 'self'; \
             style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:{extra}; \
             connect-src 'self'{extra}; frame-ancestors *; base-uri 'none'; form-action 'none'"
        )
    }
}

/// What the page's script reads from `#ketnoi-config`.
#[derive(Serialize)]
struct PageConfig<'a> {
    tiles: &'static str,
    basemap: Option<&'a Basemap>,
}

/// How long a browser may keep the widget's files before asking again
/// (with `If-None-Match`): five minutes, so that an upgrade shows soon.
const CACHE_CONTROL: &str = "public, max-age=300";

fn with_policy(mut response: HttpResponse, state: &AppState) -> Result<HttpResponse, ApiError> {
    let policy = HeaderValue::from_str(&state.widget.policy())
        .map_err(|error| ApiError::Internal(error.into()))?;
    response
        .headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, policy);
    Ok(response)
}

/// The widget page. Its URL takes `lang` (`vi`, `en`), `category` and
/// `bbox` (`minLon,minLat,maxLon,maxLat`), read by the page's script.
#[get("/widget")]
pub async fn page(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let template = Own::get("index.html").ok_or(ApiError::NoRoute)?;
    let template =
        std::str::from_utf8(&template.data).map_err(|error| ApiError::Internal(error.into()))?;
    let config = serde_json::to_string(&PageConfig {
        tiles: "/v1/public/tiles/{z}/{x}/{y}.mvt",
        basemap: state.widget.basemap.as_ref(),
    })
    .map_err(|error| ApiError::Internal(error.into()))?
    // Inside a <script> block: no `</script>` or comment can be formed.
    .replace('<', "\\u003c")
    .replace('>', "\\u003e")
    .replace('&', "\\u0026");
    let body = template.replace("{{CONFIG}}", &config).into_bytes();
    let response = super::etag::cacheable("text/html; charset=utf-8", "no-cache", body);
    with_policy(response, &state)
}

fn file(state: &AppState, file: Option<EmbeddedFile>) -> Result<HttpResponse, ApiError> {
    let file = file.ok_or(ApiError::NoRoute)?;
    let content_type = match file.metadata.mimetype() {
        "text/javascript" | "application/javascript" => "text/javascript; charset=utf-8",
        "text/css" => "text/css; charset=utf-8",
        _ => "text/plain; charset=utf-8",
    };
    let response = super::etag::cacheable(content_type, CACHE_CONTROL, file.data.into_owned());
    with_policy(response, state)
}

/// The widget's own scripts and styles (`widget.js`, `widget.css`,
/// `embed.js`).
#[get("/widget/{name}")]
pub async fn own_file(
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    let found = (name != "index.html").then(|| Own::get(&name)).flatten();
    file(&state, found)
}

/// MapLibre GL JS, as installed from npm.
#[get("/widget/vendor/{name}")]
pub async fn vendor_file(
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    file(&state, Vendor::get(&name.into_inner()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_map_url_is_checked() {
        let settings = WidgetSettings::new(
            Some("https://tile.example.org/{z}/{x}/{y}.png"),
            Some("© OpenStreetMap"),
        )
        .unwrap();
        assert!(
            settings
                .policy()
                .contains("connect-src 'self' https://tile.example.org;")
        );
        assert!(WidgetSettings::new(None, None).unwrap().basemap.is_none());
        for bad in [
            "ftp://tile.example.org/{z}/{x}/{y}.png",
            "https://tile.example.org/{z}/{x}.png",
            "https:///{z}/{x}/{y}.png",
            "https://tile.example.org/{z}/{x}/{y}.png; script-src *",
            "https://evil\"/{z}/{x}/{y}",
        ] {
            assert!(WidgetSettings::new(Some(bad), None).is_err(), "{bad}");
        }
    }
}
