//! The fixed values flags take (regions, tiers, scenarios), from the domain's own lists, so
//! that `--help` and shell completion show them and a typo is refused before any request.

use clap::builder::PossibleValuesParser;
use genesis_core::rollout::Scenario;
use genesis_core::{Region, Tier};

/// `us-east`, `us-west`, ...
pub fn regions() -> PossibleValuesParser {
    PossibleValuesParser::new(Region::ALL.map(Region::code))
}

/// `standard`, `high-priority`, `enterprise`.
pub fn tiers() -> PossibleValuesParser {
    PossibleValuesParser::new(Tier::ALL.map(Tier::code))
}

/// Spec 56.1's scenarios.
pub fn scenarios() -> PossibleValuesParser {
    PossibleValuesParser::new(Scenario::ALL.map(Scenario::code))
}
