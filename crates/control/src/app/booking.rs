//! The wizard's booking stage (spec 61.3): the link prospects book a meeting through,
//! checked before it goes into every e-mail.
//!
//! A link that cannot be a booking page (not a web address, or an internal address) is
//! refused. Everything that only makes it doubtful (a service we do not know, a page that
//! does not answer, a page without booking words, plain HTTP) is a warning: the tenant sees
//! it and may save the link anyway, since our check can be wrong where their calendar is not.

use scraper::Html;
use serde::Serialize;

use crate::outbound::{FetchError, FetchLimits, fetch_html, parse_url};
use crate::{AppState, Problem};

/// Booking services we recognise, by domain (a subdomain counts), with their names.
pub const PROVIDERS: [(&str, &str); 13] = [
    ("calendly.com", "Calendly"),
    ("cal.com", "Cal.com"),
    ("meetings.hubspot.com", "HubSpot Meetings"),
    ("meetings-eu1.hubspot.com", "HubSpot Meetings"),
    ("youcanbook.me", "YouCanBookMe"),
    ("savvycal.com", "SavvyCal"),
    ("tidycal.com", "TidyCal"),
    ("zcal.co", "zcal"),
    ("calendar.app.google", "Google Calendar"),
    ("acuityscheduling.com", "Acuity Scheduling"),
    ("as.me", "Acuity Scheduling"),
    ("outlook.office365.com", "Microsoft Bookings"),
    ("outlook.office.com", "Microsoft Bookings"),
];

/// Words a booking page shows somewhere (lower case).
const BOOKING_WORDS: [&str; 9] = [
    "book",
    "schedule",
    "appointment",
    "meeting",
    "calendar",
    "availability",
    "select a date",
    "pick a time",
    "reserve",
];

/// A link checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BookingCheck {
    /// The link, normalised.
    pub url: String,
    /// The service it belongs to, if we know it.
    pub provider: Option<&'static str>,
    /// What made the check doubt it, in words.
    pub warnings: Vec<String>,
}

/// The service `host` belongs to, if it is one of [`PROVIDERS`].
pub fn provider(host: &str) -> Option<&'static str> {
    let host = host.to_ascii_lowercase();
    PROVIDERS
        .iter()
        .find(|(domain, _)| host == *domain || host.ends_with(&format!(".{domain}")))
        .map(|(_, name)| *name)
}

/// Whether a page's visible text has a booking word.
pub fn looks_like_booking(html: &str) -> bool {
    let doc = Html::parse_document(html);
    let text = doc.root_element().text().collect::<String>().to_lowercase();
    BOOKING_WORDS.iter().any(|w| text.contains(w))
}

/// Checks `raw` as a booking link. A 422 on `booking_url` when it cannot be one; warnings
/// otherwise.
pub async fn check(limits: &FetchLimits, raw: &str) -> Result<BookingCheck, Problem> {
    let invalid = |e: FetchError| Problem::invalid_field("booking_url", e);
    let url = parse_url(raw).map_err(invalid)?;
    let mut warnings = Vec::new();
    if url.scheme() == "http" {
        warnings.push("The link is not HTTPS: prospects' browsers may warn them.".to_owned());
    }
    let provider = provider(url.host_str().unwrap_or_default());
    if provider.is_none() {
        warnings.push(
            "This is not a booking service we know (Calendly, Cal.com, HubSpot Meetings...): \
             check that the link opens your calendar."
                .to_owned(),
        );
    }
    match fetch_html(url.clone(), limits).await {
        Ok(page) => {
            if !looks_like_booking(&page.html) {
                warnings.push(
                    "The page does not look like a booking page: it has none of the words \
                     such a page shows (\"book\", \"schedule\", \"meeting\"...)."
                        .to_owned(),
                );
            }
        }
        Err(e @ (FetchError::Private(_) | FetchError::BadUrl)) => return Err(invalid(e)),
        Err(e) => warnings.push(format!("The link could not be checked: {e}.")),
    }
    Ok(BookingCheck {
        url: url.to_string(),
        provider,
        warnings,
    })
}

/// [`check`] with the control plane's fetch limits.
pub async fn check_for(state: &AppState, raw: &str) -> Result<BookingCheck, Problem> {
    check(&state.outbound, raw).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_services_are_recognised_by_domain_not_by_resemblance() {
        assert_eq!(provider("calendly.com"), Some("Calendly"));
        assert_eq!(provider("Acme.Calendly.com"), Some("Calendly"));
        assert_eq!(provider("meetings.hubspot.com"), Some("HubSpot Meetings"));
        assert_eq!(provider("ada.as.me"), Some("Acuity Scheduling"));
        assert_eq!(provider("calendly.com.evil.test"), None);
        assert_eq!(provider("notcalendly.com"), None);
    }

    #[test]
    fn booking_pages_are_told_by_their_words() {
        assert!(looks_like_booking("<h1>Select a Date &amp; Time</h1>"));
        assert!(looks_like_booking("<p>Book a 30 minute call</p>"));
        assert!(!looks_like_booking(
            "<h1>About us</h1><p>We make rockets.</p>"
        ));
        // Words in markup, not text, do not count.
        assert!(!looks_like_booking(r#"<div class="booking"></div>"#));
    }
}
