//! The JWT `tier` claim: an enum (xAI's `prod_auth.SubscriptionTier`), not a rank.
//!
//! Reference doc §3.3 (GB `agent/mvp_agent/mod.rs::jwt_tier_claim`): 0 free, 1 SuperGrok,
//! 2 X Basic, 3 X Premium, 4 X Premium+, 5 SuperGrok Heavy, 6 SuperGrok Lite, 7 SuperGrok
//! Plus. The rail's `GET /user?include=subscription` names the same tiers (§3.2).

/// A subscription tier as the access token's `tier` claim carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    /// 0: no subscription.
    Free,
    /// 1: SuperGrok (`GrokPro` in `subscriptionTier`).
    SuperGrok,
    /// 2: X Basic.
    XBasic,
    /// 3: X Premium.
    XPremium,
    /// 4: X Premium+.
    XPremiumPlus,
    /// 5: SuperGrok Heavy (`SuperGrokPro` in `subscriptionTier`).
    SuperGrokHeavy,
    /// 6: SuperGrok Lite.
    SuperGrokLite,
    /// 7: SuperGrok Plus.
    SuperGrokPlus,
}

impl Tier {
    /// Every tier, in claim order.
    pub const ALL: [Tier; 8] = [
        Tier::Free,
        Tier::SuperGrok,
        Tier::XBasic,
        Tier::XPremium,
        Tier::XPremiumPlus,
        Tier::SuperGrokHeavy,
        Tier::SuperGrokLite,
        Tier::SuperGrokPlus,
    ];

    /// The tier of a claim value; `None` for a value the enum does not have.
    pub fn from_claim(claim: u32) -> Option<Tier> {
        Self::ALL.get(usize::try_from(claim).ok()?).copied()
    }

    /// The claim value.
    pub fn claim(self) -> u32 {
        self as u32
    }

    /// Whether this is a paid subscription.
    pub fn is_paid(self) -> bool {
        self != Tier::Free
    }

    /// `subscriptionTier` of `GET /user?include=subscription`; `None` for free, which the
    /// rail leaves out (§3.2, GB `auth/model.rs::UserInfo`, `subscription_check.rs`).
    pub fn subscription_tier(self) -> Option<&'static str> {
        Some(match self {
            Tier::Free => return None,
            Tier::SuperGrok => "GrokPro",
            Tier::XBasic => "XBasic",
            Tier::XPremium => "XPremium",
            Tier::XPremiumPlus => "XPremiumPlus",
            Tier::SuperGrokHeavy => "SuperGrokPro",
            Tier::SuperGrokLite => "SuperGrokLite",
            Tier::SuperGrokPlus => "SuperGrokPlus",
        })
    }

    /// The product name people know (as `/settings`' `subscription_tier_display` shows it).
    pub fn display_name(self) -> &'static str {
        match self {
            Tier::Free => "Free",
            Tier::SuperGrok => "SuperGrok",
            Tier::XBasic => "X Basic",
            Tier::XPremium => "X Premium",
            Tier::XPremiumPlus => "X Premium+",
            Tier::SuperGrokHeavy => "SuperGrok Heavy",
            Tier::SuperGrokLite => "SuperGrok Lite",
            Tier::SuperGrokPlus => "SuperGrok Plus",
        }
    }
}

/// Which tiers a catalogue entry is offered to: an explicit set, never "tier ≥ n" (the
/// claim is an enum, so its numbers have no order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tiers {
    /// Every caller, whatever the claim (api.x.ai bills the API pool, not the
    /// subscription, so nothing there is known to depend on the tier: §4).
    All,
    /// Exactly these claim values.
    Only(Vec<u32>),
}

impl Tiers {
    /// Every paid tier (claims 1–7).
    pub fn paid() -> Self {
        Tiers::Only(
            Tier::ALL
                .iter()
                .filter(|t| t.is_paid())
                .map(|t| t.claim())
                .collect(),
        )
    }

    /// Exactly these tiers.
    pub fn of(tiers: &[Tier]) -> Self {
        Tiers::Only(tiers.iter().map(|t| t.claim()).collect())
    }

    /// Whether a caller with this claim value is offered the entry.
    pub fn includes(&self, claim: u32) -> bool {
        match self {
            Tiers::All => true,
            Tiers::Only(claims) => claims.contains(&claim),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_claim_is_the_documented_enum() {
        let names: Vec<_> = (0..8)
            .map(|c| Tier::from_claim(c).unwrap().display_name())
            .collect();
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
        assert_eq!(Tier::from_claim(8), None);
        assert_eq!(Tier::SuperGrok.subscription_tier(), Some("GrokPro"));
        assert_eq!(
            Tier::SuperGrokHeavy.subscription_tier(),
            Some("SuperGrokPro")
        );
        assert_eq!(Tier::Free.subscription_tier(), None);
        assert!(Tiers::paid().includes(5) && !Tiers::paid().includes(0));
        assert!(!Tiers::of(&[Tier::XPremium]).includes(4));
    }
}
