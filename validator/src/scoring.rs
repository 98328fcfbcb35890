//! Points and credibility: `points/v1`.
//!
//! ## Credibility
//! Every cross-check a node takes part in yields 1 (its text agreed with the independent fetch)
//! or 0 (it disagreed and a third fetch sided against it). Credibility is an exponential moving
//! average of those results, `c ← (1 − α)·c + α·x`, starting at [`CREDIBILITY_START`] = 0 so
//! new identities earn little until proven, and its weight depends on the result, because trust
//! is slow to earn and quick to lose:
//! * a pass weighs [`CREDIBILITY_ALPHA`] = 0.15 (Bittensor subnet 13's value): after n passes
//!   c = 1 − 0.85ⁿ (5 → 0.56, 10 → 0.80, 20 → 0.96);
//! * a failure weighs [`CREDIBILITY_ALPHA_FAILED`] = 1: c returns to 0, so a node caught
//!   fabricating is as unproven as a new identity, earns at the floor and is checked at the
//!   new-node rate until ten passes in a row prove it again ([`PROVEN_CREDIBILITY`]). With the
//!   pass weight a node at c = 0.9 caught once would still earn half of its reward;
//! * a page nobody else found (`page_gone`: the checker and the validator's own fetch both found
//!   none where the node claimed one) weighs [`CREDIBILITY_ALPHA_PAGE_GONE`] = 0.15 towards 0:
//!   a page can vanish between two fetches, so an honest node keeps its standing, while a node
//!   that invents pages for dead links keeps losing more than they earn it.
//!
//! ## Points for one accepted record (`points/v1`)
//! `points = round(POINTS_PER_KCHAR × kchars × quality × max(FLOOR, c^2.5))` where
//! * `kchars` = min(text bytes, [`POINTS_TEXT_CAP_BYTES`]) / 1000 (long pages do not farm points);
//! * `quality` = 0.5 + 0.5 · min(1, line-punctuation ratio / 0.5), in [0.5, 1]: prose scores more
//!   than lists that barely passed the filters;
//! * `c^2.5` makes fabrication ruinous (c = 0.8 earns 57 %, c = 0.5 earns 18 %), and
//!   [`REWARD_FLOOR`] = 0.05 lets an unproven node earn a little so it has reason to stay.
//!
//! Duplicates and rejected records earn 0. A node caught fabricating by a third fetch forfeits
//! everything it earned in the open epoch through a negative `penalty` ledger entry (a sampled
//! check stands for the unsampled jobs), and its records of the open epoch are revoked, so they
//! never reach a dataset.

/// Name and version of the formula, carried in every receipt.
pub const SCORING: &str = "points/v1";
/// EMA weight of a passed check.
pub const CREDIBILITY_ALPHA: f64 = 0.15;
/// EMA weight of a failed check: one failure outweighs any record of passes.
pub const CREDIBILITY_ALPHA_FAILED: f64 = 1.0;
/// EMA weight of a check where neither the checker nor the validator found the page a node
/// claimed (`page_gone`): a pass's weight, not a refuted text's reset, since a page can disappear
/// between two fetches. Inventing text for dead links still costs more than it earns
/// (`tests::inventing_dead_link_pages_does_not_pay`).
pub const CREDIBILITY_ALPHA_PAGE_GONE: f64 = CREDIBILITY_ALPHA;
/// Credibility of a new identity.
pub const CREDIBILITY_START: f64 = 0.0;
/// Exponent of credibility in rewards.
pub const REWARD_EXPONENT: f64 = 2.5;
/// Smallest reward multiplier, so new nodes earn something while they are being checked.
pub const REWARD_FLOOR: f64 = 0.05;
/// Points per 1,000 bytes of accepted text at full quality and credibility.
pub const POINTS_PER_KCHAR: f64 = 100.0;
/// Text beyond this many bytes earns nothing more: 50 KB is a long article.
pub const POINTS_TEXT_CAP_BYTES: usize = 50_000;
/// Credibility from which a node is no longer "new" (and is cross-checked at the normal rate
/// rather than the new-node rate): ten passes in a row from the start (1 − 0.85¹⁰ ≈ 0.803).
pub const PROVEN_CREDIBILITY: f64 = 0.8;
/// Two fetches of one URL "agree" when their MinHash similarity reaches this: ads, dates and
/// counters change a few shingles; a fabricated or substituted page shares almost none.
pub const AGREEMENT_SIMILARITY: f64 = 0.5;

/// The next credibility after a check with `passed`.
pub fn update_credibility(current: f64, passed: bool) -> f64 {
    let (alpha, x) = if passed {
        (CREDIBILITY_ALPHA, 1.0)
    } else {
        (CREDIBILITY_ALPHA_FAILED, 0.0)
    };
    ((1.0 - alpha) * current + alpha * x).clamp(0.0, 1.0)
}

/// The next credibility after a check where the page a node claimed was found by nobody else
/// (`page_gone`).
pub fn update_credibility_page_gone(current: f64) -> f64 {
    ((1.0 - CREDIBILITY_ALPHA_PAGE_GONE) * current).clamp(0.0, 1.0)
}

/// Whether a node of `credibility` has proven itself (and is cross-checked at the normal rate).
pub fn is_proven(credibility: f64) -> bool {
    credibility >= PROVEN_CREDIBILITY
}

/// Whether a node may fetch other nodes' pages as a cross-check or tie-break: not while it is
/// caught, i.e. has failed a check (`checks_failed > 0`) and passed none since (a failure puts
/// credibility back at the start, a pass lifts it). A caught node's fetch is worth nothing as
/// evidence, and a tie-break agreeing with neither earlier fetch is inconclusive, so a liar
/// checking another liar would shield it.
pub fn may_judge(checks_failed: i64, credibility: f64) -> bool {
    checks_failed == 0 || credibility > CREDIBILITY_START
}

/// The reward multiplier of a credibility.
pub fn reward_multiplier(credibility: f64) -> f64 {
    credibility
        .clamp(0.0, 1.0)
        .powf(REWARD_EXPONENT)
        .max(REWARD_FLOOR)
}

/// Points for an accepted text of `text_bytes` with FineWeb line-punctuation ratio
/// `punct_ratio`, from a node with `credibility`.
pub fn points(text_bytes: usize, punct_ratio: f64, credibility: f64) -> u64 {
    let kchars = text_bytes.min(POINTS_TEXT_CAP_BYTES) as f64 / 1000.0;
    let punct = if punct_ratio.is_nan() {
        0.0
    } else {
        punct_ratio
    };
    let quality = 0.5 + 0.5 * (punct / 0.5).clamp(0.0, 1.0);
    let p = POINTS_PER_KCHAR * kchars * quality * reward_multiplier(credibility);
    if p.is_finite() && p > 0.0 {
        p.round() as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credibility_rises_slowly_and_falls_fast_in_rewards() {
        let mut c = CREDIBILITY_START;
        for _ in 0..10 {
            c = update_credibility(c, true);
        }
        assert!((c - (1.0 - 0.85f64.powi(10))).abs() < 1e-9);
        assert!(is_proven(c), "ten passes in a row prove a node");
        let mut nine = CREDIBILITY_START;
        for _ in 0..9 {
            nine = update_credibility(nine, true);
        }
        assert!(!is_proven(nine));
        // One failed check undoes any record of passes.
        let caught = update_credibility(update_credibility(c, true), false);
        assert_eq!(caught, 0.0);
        assert!(!is_proven(caught));
        // Caught, it judges nobody until it passes a check again; a new node judges.
        assert!(!may_judge(1, caught));
        assert!(may_judge(1, update_credibility(caught, true)));
        assert!(may_judge(0, CREDIBILITY_START));
        assert_eq!(points(5_000, 1.0, 1.0), 500);
        assert_eq!(points(5_000, 1.0, 0.0), 25);
        assert_eq!(points(500_000, 1.0, 1.0), 5_000);
        assert!(points(5_000, 1.0, 0.5) < points(5_000, 1.0, 0.9) / 2);
        assert_eq!(points(5_000, f64::NAN, 1.0), 250);
    }

    /// A proven node that adds invented pages for dead links to its honest work (one for every
    /// `1/share` real pages): each sampled one is revoked and lowers its credibility as a pass
    /// raises it, so at the rates pages are checked it ends up earning less over the same real
    /// work than if it had invented nothing. An honest node whose page vanished once is not
    /// thrown back to the start.
    #[test]
    fn inventing_dead_link_pages_does_not_pay() {
        let honest_points = points(5_000, 1.0, 1.0) as f64;
        for share in [0.02, 0.1, 0.5, 1.0] {
            for rate in [0.07, 0.5] {
                // Expected points a real page over a long run: records in a fixed order (every
                // `1/share`-th real page followed by an invented one), checks on a share `rate`
                // of them, the credibility's EMA applied in expectation.
                let mut c = 1.0;
                let (mut earned, mut real) = (0.0, 0.0);
                let mut owed = 0.0;
                for i in 0..200_000 {
                    real += 1.0;
                    earned += points(5_000, 1.0, c) as f64;
                    c = c + rate * (update_credibility(c, true) - c);
                    owed += share;
                    if owed >= 1.0 && i > 0 {
                        owed -= 1.0;
                        // Kept unless sampled; sampled, its points are taken back.
                        earned += (1.0 - rate) * points(5_000, 1.0, c) as f64;
                        c = c + rate * (update_credibility_page_gone(c) - c);
                    }
                }
                assert!(
                    earned / real < honest_points,
                    "share {share}, rate {rate}: {} a real page against {honest_points}",
                    earned / real
                );
            }
        }
        // One vanished page costs a proven node a pass's weight, not its standing.
        let proven = update_credibility_page_gone(0.95);
        assert!(is_proven(proven), "{proven}");
        assert_eq!(update_credibility_page_gone(CREDIBILITY_START), 0.0);
    }
}
