//! Human names of xAI subscription tiers (observed mapping; xAI does not publish it).

/// The name of `tier`, e.g. `3` -> `SuperGrok`.
pub fn tier_name(tier: u32) -> String {
    match tier {
        1 => "X Premium".to_owned(),
        2 => "X Premium+".to_owned(),
        3 => "SuperGrok".to_owned(),
        4 => "SuperGrok Heavy".to_owned(),
        n => format!("tier {n}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names() {
        assert_eq!(super::tier_name(1), "X Premium");
        assert_eq!(super::tier_name(2), "X Premium+");
        assert_eq!(super::tier_name(3), "SuperGrok");
        assert_eq!(super::tier_name(4), "SuperGrok Heavy");
        assert_eq!(super::tier_name(0), "tier 0");
        assert_eq!(super::tier_name(9), "tier 9");
    }
}
