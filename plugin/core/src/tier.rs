//! Human names of xAI subscription tiers.
//!
//! The access token's `tier` claim is the `prod_auth.SubscriptionTier` enum of xAI's own CLI
//! (`xai-org/grok-build`, `agent/mvp_agent/mod.rs::jwt_tier_claim`), not a rank: the seed's
//! "observed" table (1 X Premium ... 4 SuperGrok Heavy) named every tier wrong. The rail's
//! `GET /user?include=subscription` names the subscription with its own words
//! ([`subscription_name`]).

/// The name of the JWT `tier` value, e.g. `1` -> `SuperGrok`; unknown values are shown as
/// `tier N`.
pub fn tier_name(tier: u32) -> String {
    match tier {
        0 => "Free",
        1 => "SuperGrok",
        2 => "X Basic",
        3 => "X Premium",
        4 => "X Premium+",
        5 => "SuperGrok Heavy",
        6 => "SuperGrok Lite",
        7 => "SuperGrok Plus",
        n => return format!("tier {n}"),
    }
    .to_owned()
}

/// The display name of the rail's `subscriptionTier` (`GrokPro` is SuperGrok,
/// `SuperGrokPro` SuperGrok Heavy); `None` for `Free` or an empty value (no subscription).
/// An unknown value is shown as the rail wrote it, when it is a short plain word.
pub fn subscription_name(value: &str) -> Option<String> {
    let v = value.trim();
    let known = match v {
        "" | "Free" | "FREE" | "free" => return None,
        "GrokPro" => "SuperGrok",
        "SuperGrokPro" => "SuperGrok Heavy",
        "SuperGrokLite" => "SuperGrok Lite",
        "SuperGrokPlus" => "SuperGrok Plus",
        "XBasic" => "X Basic",
        "XPremium" => "X Premium",
        "XPremiumPlus" => "X Premium+",
        other => {
            let plain = other.len() <= 40
                && other
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            return plain.then(|| other.to_owned());
        }
    };
    Some(known.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_tiers_follow_xais_enum() {
        let names: Vec<String> = (0..=7).map(tier_name).collect();
        assert_eq!(
            names,
            [
                "Free",
                "SuperGrok",
                "X Basic",
                "X Premium",
                "X Premium+",
                "SuperGrok Heavy",
                "SuperGrok Lite",
                "SuperGrok Plus"
            ]
        );
        assert_eq!(tier_name(9), "tier 9");
    }

    #[test]
    fn subscription_tiers_of_the_rail() {
        assert_eq!(subscription_name("GrokPro").as_deref(), Some("SuperGrok"));
        assert_eq!(
            subscription_name("SuperGrokPro").as_deref(),
            Some("SuperGrok Heavy")
        );
        assert_eq!(
            subscription_name("XPremiumPlus").as_deref(),
            Some("X Premium+")
        );
        assert_eq!(subscription_name("Free"), None);
        assert_eq!(subscription_name(""), None);
        assert_eq!(subscription_name("GrokUltra").as_deref(), Some("GrokUltra"));
        assert_eq!(subscription_name("a b\nc"), None);
    }
}
