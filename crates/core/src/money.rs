//! Money (spec 58): amounts, and the transaction types of the Genesis Wallet.
//!
//! Amounts are integers, never floats. The unit is the **millicent**, a thousandth of a cent
//! ($0.00001): the price list of spec 57.2 sells single operations for fractions of a cent
//! (an e-mail verification is $0.003, a proxied request $0.001, and the proxy's wholesale cost
//! is $0.0007), so whole cents would round every one of them away. Payments arrive in whole
//! cents and are converted exactly; a balance is shown to people in dollars with as many
//! decimals as it needs. This is TigerBeetle's "asset scale" (here 5) under a name that says
//! what it is (decision 84).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Millicents in one cent.
pub const PER_CENT: i64 = 1_000;
/// Millicents in one dollar.
pub const PER_DOLLAR: i64 = 100_000;

/// An amount of money in millicents. Transfers carry non-negative amounts; only derived
/// figures (a margin, a drift) may be negative.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Millicents(pub i64);

/// Text that is not an amount of money.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyParseError {
    /// Not a decimal number of dollars.
    #[error("{0:?} is not an amount of dollars such as 0.005 or 50")]
    NotANumber(String),
    /// More than five decimals: finer than a millicent.
    #[error("{0:?} is finer than a thousandth of a cent")]
    TooFine(String),
    /// Too large to hold.
    #[error("{0:?} is too large")]
    TooLarge(String),
}

impl Millicents {
    /// Zero.
    pub const ZERO: Millicents = Millicents(0);

    /// Whole cents.
    pub const fn from_cents(cents: i64) -> Self {
        Millicents(cents * PER_CENT)
    }

    /// Whole dollars.
    pub const fn from_dollars(dollars: i64) -> Self {
        Millicents(dollars * PER_DOLLAR)
    }

    /// The raw count.
    pub const fn get(self) -> i64 {
        self.0
    }

    /// Whole cents, rounded down (the wallet's `balance_cents` of spec 58.1).
    pub const fn cents_floor(self) -> i64 {
        self.0.div_euclid(PER_CENT)
    }

    /// Whether this is a whole number of cents (what a card can be charged).
    pub const fn is_whole_cents(self) -> bool {
        self.0 % PER_CENT == 0
    }

    /// `self + other`, `None` on overflow.
    pub fn checked_add(self, other: Millicents) -> Option<Millicents> {
        self.0.checked_add(other.0).map(Millicents)
    }

    /// `self - other`, `None` on overflow.
    pub fn checked_sub(self, other: Millicents) -> Option<Millicents> {
        self.0.checked_sub(other.0).map(Millicents)
    }

    /// `self × n`, `None` on overflow.
    pub fn checked_mul(self, n: i64) -> Option<Millicents> {
        self.0.checked_mul(n).map(Millicents)
    }

    /// Parses dollars written as a decimal: `50`, `0.005`, `$4.50`. At most five decimals.
    pub fn parse_dollars(text: &str) -> Result<Self, MoneyParseError> {
        let bad = || MoneyParseError::NotANumber(text.to_owned());
        let t = text.trim();
        let t = t.strip_prefix('$').unwrap_or(t);
        let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
        if whole.is_empty() && frac.is_empty() {
            return Err(bad());
        }
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || !digits(frac) || (t.contains('.') && frac.is_empty()) {
            return Err(bad());
        }
        if frac.len() > 5 {
            return Err(MoneyParseError::TooFine(text.to_owned()));
        }
        let too_large = || MoneyParseError::TooLarge(text.to_owned());
        let whole: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| too_large())?
        };
        let frac_units: i64 = if frac.is_empty() {
            0
        } else {
            let scaled = format!("{frac:0<5}");
            scaled.parse().map_err(|_| bad())?
        };
        whole
            .checked_mul(PER_DOLLAR)
            .and_then(|w| w.checked_add(frac_units))
            .map(Millicents)
            .ok_or_else(too_large)
    }
}

impl fmt::Display for Millicents {
    /// Dollars with two decimals, or as many as the amount needs: `$50.00`, `$0.003`,
    /// `-$0.0007`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let dollars = abs / PER_DOLLAR as u64;
        let frac = abs % PER_DOLLAR as u64;
        let mut digits = format!("{frac:05}");
        while digits.len() > 2 && digits.ends_with('0') {
            digits.pop();
        }
        write!(f, "{sign}${dollars}.{digits}")
    }
}

/// Which way a transaction moves money, seen from the tenant's wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Into the wallet.
    Credit,
    /// Out of the wallet.
    Debit,
}

/// The transaction types of spec 58.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TransferKind {
    /// The tenant added money.
    Deposit,
    /// Automatic recharge from the saved payment method.
    AutoTopup,
    /// One Apify actor run.
    ApifyScrape,
    /// One Google Custom Search query.
    CseSearch,
    /// One request through the residential proxies.
    ProxyRequest,
    /// One e-mail address verified.
    EmailVerify,
    /// Money given back for a failed operation.
    Refund,
}

impl TransferKind {
    /// Every type.
    pub const ALL: [TransferKind; 7] = [
        TransferKind::Deposit,
        TransferKind::AutoTopup,
        TransferKind::ApifyScrape,
        TransferKind::CseSearch,
        TransferKind::ProxyRequest,
        TransferKind::EmailVerify,
        TransferKind::Refund,
    ];

    /// The stored name (spec 58.1's).
    pub fn code(self) -> &'static str {
        match self {
            TransferKind::Deposit => "DEPOSIT",
            TransferKind::AutoTopup => "AUTO_TOPUP",
            TransferKind::ApifyScrape => "APIFY_SCRAPE",
            TransferKind::CseSearch => "CSE_SEARCH",
            TransferKind::ProxyRequest => "PROXY_REQUEST",
            TransferKind::EmailVerify => "EMAIL_VERIFY",
            TransferKind::Refund => "REFUND",
        }
    }

    /// Parses a stored name.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    /// Which way it moves the wallet's money.
    pub fn direction(self) -> Direction {
        match self {
            TransferKind::Deposit | TransferKind::AutoTopup | TransferKind::Refund => {
                Direction::Credit
            }
            _ => Direction::Debit,
        }
    }
}

impl fmt::Display for TransferKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_price_list() {
        assert_eq!(Millicents::parse_dollars("0.005"), Ok(Millicents(500)));
        assert_eq!(Millicents::parse_dollars("$4.50"), Ok(Millicents(450_000)));
        assert_eq!(Millicents::parse_dollars("0.0007"), Ok(Millicents(70)));
        assert_eq!(Millicents::parse_dollars("50"), Ok(Millicents(5_000_000)));
        assert_eq!(Millicents::parse_dollars(".5"), Ok(Millicents(50_000)));
        assert!(matches!(
            Millicents::parse_dollars("0.000001"),
            Err(MoneyParseError::TooFine(_))
        ));
        for bad in ["", "$", "1.", "-1", "1e3", "one", "1.2.3", " 1 2"] {
            assert!(Millicents::parse_dollars(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            Millicents::parse_dollars("99999999999999999999"),
            Err(MoneyParseError::TooLarge(_))
        ));
    }

    #[test]
    fn shows_dollars_with_the_decimals_needed() {
        assert_eq!(Millicents(5_000_000).to_string(), "$50.00");
        assert_eq!(Millicents(300).to_string(), "$0.003");
        assert_eq!(Millicents(-70).to_string(), "-$0.0007");
        assert_eq!(Millicents(100).to_string(), "$0.001");
        assert_eq!(Millicents(0).to_string(), "$0.00");
        assert_eq!(Millicents(1_234_567).cents_floor(), 1234);
    }

    #[test]
    fn transfer_kinds_round_trip_and_point_the_right_way() {
        for k in TransferKind::ALL {
            assert_eq!(TransferKind::from_code(k.code()), Some(k));
        }
        assert_eq!(TransferKind::Refund.direction(), Direction::Credit);
        assert_eq!(TransferKind::CseSearch.direction(), Direction::Debit);
    }

    proptest! {
        #[test]
        fn display_and_parse_agree(n in 0i64..10_000_000_000) {
            let m = Millicents(n);
            prop_assert_eq!(Millicents::parse_dollars(&m.to_string()), Ok(m));
        }
    }
}
