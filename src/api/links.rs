//! Where the API's own links (`GET /hsds/`) point. Never where a request
//! says it was sent: `Host`, `Forwarded` and `X-Forwarded-*` are the
//! client's to write, and a link built from them would send the next
//! reader wherever an attacker chose.

use actix_web::HttpRequest;

/// The URL the public reaches Kết Nối at (`KETNOI_PUBLIC_URL`), behind a
/// proxy or under another name: `http` or `https`, a host, maybe a port
/// and a path; no credentials, query or fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(String);

impl PublicUrl {
    pub fn parse(value: &str) -> anyhow::Result<Self> {
        let url = url::Url::parse(value)?;
        anyhow::ensure!(
            matches!(url.scheme(), "http" | "https"),
            "the public URL must start with https:// or http://"
        );
        anyhow::ensure!(url.host().is_some(), "the public URL must name a host");
        anyhow::ensure!(
            url.username().is_empty() && url.password().is_none(),
            "the public URL must not carry credentials"
        );
        anyhow::ensure!(
            url.query().is_none() && url.fragment().is_none(),
            "the public URL must not have a query or a fragment"
        );
        Ok(Self(url.as_str().trim_end_matches('/').to_owned()))
    }

    /// The URL, without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The base of the links an answer gives: the public URL when one is
/// configured, else this server's own scheme and the address the
/// connection reached.
pub fn base(request: &HttpRequest, public: Option<&PublicUrl>) -> String {
    match public {
        Some(PublicUrl(url)) => url.clone(),
        None => {
            let config = request.app_config();
            let scheme = if config.secure() { "https" } else { "http" };
            format!("{scheme}://{}", config.local_addr())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_urls_are_public_urls() {
        assert_eq!(
            PublicUrl::parse("https://ketnoi.example.vn/").unwrap(),
            PublicUrl("https://ketnoi.example.vn".into())
        );
        assert_eq!(
            PublicUrl::parse("http://10.0.0.5:8080/api").unwrap(),
            PublicUrl("http://10.0.0.5:8080/api".into())
        );
        for bad in [
            "javascript://evil.example/",
            "ftp://ketnoi.example.vn",
            "https://user:pw@ketnoi.example.vn",
            "https://ketnoi.example.vn/?a=1",
            "https://ketnoi.example.vn/#x",
            "ketnoi.example.vn",
            "",
        ] {
            assert!(PublicUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
