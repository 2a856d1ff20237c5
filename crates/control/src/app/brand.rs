//! The wizard's brand stage (spec 61.1): from the company's website, a first draft of its
//! name, logo, description and products, for the tenant to correct and confirm.
//!
//! The site is fetched through [`crate::outbound`] (bounded, no internal addresses) and read
//! with an HTML parser (`scraper`, html5ever's parser: the same tree a browser builds, so
//! malformed pages read as a browser reads them). Nothing fetched is trusted as markup: the
//! fields are plain text, and pages escape them.

use scraper::{Html, Selector};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::outbound::{FetchLimits, fetch_html, parse_url};
use crate::{AppState, Problem};

/// The most products kept from a products page.
pub const MAX_PRODUCTS: usize = 20;
/// The longest text kept for a field, in characters.
const MAX_TEXT: usize = 300;

/// What the brand stage knows of a company.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Brand {
    /// The company's name.
    pub name: Option<String>,
    /// Its website, as fetched (after redirects).
    pub website: Option<String>,
    /// The address of its logo.
    pub logo: Option<String>,
    /// One or two sentences about it.
    pub description: Option<String>,
    /// What it sells, from its products page's headings.
    pub products: Vec<String>,
}

/// Whitespace collapsed, trimmed, cut to [`MAX_TEXT`] characters; `None` when empty.
fn clean(text: &str) -> Option<String> {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut: String = joined.chars().take(MAX_TEXT).collect();
    (!cut.is_empty()).then_some(cut)
}

fn selector(css: &str) -> Selector {
    // The selectors are constants of this module; a typo is caught by its tests.
    Selector::parse(css).unwrap_or_else(|e| panic!("selector {css}: {e}"))
}

fn meta(doc: &Html, css: &str) -> Option<String> {
    doc.select(&selector(css))
        .find_map(|e| e.value().attr("content").and_then(clean))
}

/// An absolute http(s) address for `href` found on the page at `base`.
fn absolute(base: &Url, href: &str) -> Option<String> {
    base.join(href.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .map(String::from)
}

/// A title without the tagline that often follows its first " | " or " - ".
fn before_tagline(title: &str) -> &str {
    [" | ", " - ", " – ", " — "]
        .iter()
        .filter_map(|sep| title.find(sep))
        .min()
        .map_or(title, |i| &title[..i])
        .trim()
}

/// Name, logo and description from a home page (no products: they come from another
/// page). The name is `og:site_name`, else the `<title>` (its first part, before a " | " or
/// " - " that usually precedes a tagline); the logo `og:image`, else an icon link, else
/// `/favicon.ico`.
pub fn read_home(html: &str, url: &Url) -> Brand {
    let doc = Html::parse_document(html);
    let title = doc
        .select(&selector("title"))
        .next()
        .and_then(|t| clean(&t.text().collect::<String>()))
        .map(|t| before_tagline(&t).to_owned());
    let icon = doc
        .select(&selector("link[rel~='icon'], link[rel='apple-touch-icon']"))
        .find_map(|e| e.value().attr("href"))
        .and_then(|h| absolute(url, h));
    Brand {
        name: meta(&doc, "meta[property='og:site_name']").or(title),
        website: Some(url.to_string()),
        logo: meta(&doc, "meta[property='og:image']")
            .and_then(|h| absolute(url, &h))
            .or(icon)
            .or_else(|| absolute(url, "/favicon.ico")),
        description: meta(&doc, "meta[name='description']")
            .or_else(|| meta(&doc, "meta[property='og:description']")),
        products: Vec::new(),
    }
}

/// The link to a products page on a home page: an `<a>` whose address or text says
/// "product" (or "services"), on the same site; else `/products`.
pub fn products_link(html: &str, url: &Url) -> Option<Url> {
    let doc = Html::parse_document(html);
    let found = doc.select(&selector("a[href]")).find_map(|a| {
        let href = a.value().attr("href")?;
        let text = a.text().collect::<String>().to_lowercase();
        let says = |s: &str| href.to_lowercase().contains(s) || text.contains(s);
        if !(says("product") || says("services")) {
            return None;
        }
        url.join(href)
            .ok()
            .filter(|u| u.host_str() == url.host_str())
    });
    found.or_else(|| url.join("/products").ok())
}

/// The products a products page lists: its `<h2>` and `<h3>` headings, in order, without
/// repeats, at most [`MAX_PRODUCTS`].
pub fn read_products(html: &str) -> Vec<String> {
    let doc = Html::parse_document(html);
    let mut out: Vec<String> = Vec::new();
    for h in doc.select(&selector("h2, h3")) {
        if let Some(t) = clean(&h.text().collect::<String>())
            && !out.contains(&t)
        {
            out.push(t);
        }
        if out.len() == MAX_PRODUCTS {
            break;
        }
    }
    out
}

/// Reads `website` and its products page into a draft [`Brand`]. A site that cannot be
/// read is a 422 naming `website`, with why in words; a products page that cannot be read
/// only leaves the products empty.
pub async fn scrape(limits: &FetchLimits, website: &str) -> Result<Brand, Problem> {
    let invalid = |e: crate::outbound::FetchError| Problem::invalid_field("website", e);
    let url = parse_url(website).map_err(invalid)?;
    let home = fetch_html(url, limits).await.map_err(invalid)?;
    let mut brand = read_home(&home.html, &home.url);
    if let Some(link) = products_link(&home.html, &home.url)
        && link != home.url
    {
        match fetch_html(link, limits).await {
            Ok(page) => brand.products = read_products(&page.html),
            Err(e) => tracing::debug!(error = %e, "no products page"),
        }
    }
    Ok(brand)
}

/// [`scrape`] with the control plane's fetch limits.
pub async fn scrape_for(state: &AppState, website: &str) -> Result<Brand, Problem> {
    scrape(&state.outbound, website).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("url")
    }

    #[test]
    fn a_home_page_gives_name_logo_and_description() {
        let html = r#"<html><head><title>Acme Rockets | Rockets for everyone</title>
            <meta property="og:image" content="/img/logo.png">
            <meta name="description" content="  Rockets,
               delivered.  ">
            <link rel="shortcut icon" href="/fav.png"></head><body></body></html>"#;
        let b = read_home(html, &url("https://acme.test/"));
        assert_eq!(b.name.as_deref(), Some("Acme Rockets"));
        assert_eq!(b.logo.as_deref(), Some("https://acme.test/img/logo.png"));
        assert_eq!(b.description.as_deref(), Some("Rockets, delivered."));
        let b = read_home(
            r#"<meta property="og:site_name" content="ACME"><link rel="icon" href="i.svg"><title>x</title>"#,
            &url("https://acme.test/a/"),
        );
        assert_eq!(b.name.as_deref(), Some("ACME"));
        assert_eq!(b.logo.as_deref(), Some("https://acme.test/a/i.svg"));
        let bare = read_home("<p>hello", &url("https://acme.test/"));
        assert_eq!(bare.name, None);
        assert_eq!(bare.logo.as_deref(), Some("https://acme.test/favicon.ico"));
    }

    #[test]
    fn products_come_from_the_products_page_headings() {
        let home = r#"<a href="https://elsewhere.test/products">x</a><a href="/catalogue">Our products</a>"#;
        assert_eq!(
            products_link(home, &url("https://acme.test/")).map(String::from),
            Some("https://acme.test/catalogue".into())
        );
        assert_eq!(
            products_link("<p>none</p>", &url("https://acme.test/")).map(String::from),
            Some("https://acme.test/products".into())
        );
        let page = "<h1>Products</h1><h2>Rocket  <b>One</b></h2><h3>Rocket Two</h3><h2>Rocket One</h2><h4>no</h4>";
        assert_eq!(read_products(page), ["Rocket One", "Rocket Two"]);
        let many: String = (0..50).map(|i| format!("<h2>P{i}</h2>")).collect();
        assert_eq!(read_products(&many).len(), MAX_PRODUCTS);
    }
}
