//! Communities of the account link graph: linked components split into
//! groups that are linked more to each other than to the rest.
//!
//! Links are judged pair by pair and are transitive only through
//! communities: with ~10,000 accounts a component joined by single links
//! chains benign groups (a classroom, a company team) to a harvesting
//! campaign through a few accounts that share something with both, and a
//! cluster's verdict is every member's (docs/analyzer.md, "Results (session
//! 12: cluster cohesion)"). The Leiden algorithm (Traag, Waltman & van Eck
//! 2019, the `leiden-rs` crate) maximises modularity over the weighted link
//! graph: a member stays with the group it has most link weight into,
//! relative to what the group's total links would give by chance, and every
//! community it returns is connected. Its cost grows with the links, not
//! with the members squared. The run is sequential (the crate's parallel
//! path is left out) with a fixed seed, on nodes numbered in account order
//! and links in pair order, so the same input gives the same communities.

use leiden_rs::{GraphDataBuilder, Leiden, LeidenConfig, LeidenError, QualityType};

/// The seed of Leiden's refinement step (any fixed value: the output must
/// depend on the input only).
const SEED: u64 = 12;

/// A weighted, undirected link between two accounts (indices).
#[derive(Clone, Copy, Debug)]
pub(crate) struct WeightedLink {
    /// One account.
    pub a: u32,
    /// The other.
    pub b: u32,
    /// Link weight (> 0).
    pub weight: f64,
}

/// The community of each of `n` accounts linked by `links`: the smallest
/// account index in its community (an account without links is its own).
/// `resolution` is modularity's γ: above 1, smaller communities.
pub(crate) fn communities(
    n: usize,
    links: &[WeightedLink],
    resolution: f64,
) -> Result<Vec<u32>, LeidenError> {
    let mut label: Vec<u32> = (0..n as u32).collect();
    // Only linked accounts enter the graph, numbered in account order.
    let mut node = vec![u32::MAX; n];
    let mut accounts: Vec<u32> = links.iter().flat_map(|l| [l.a, l.b]).collect();
    accounts.sort_unstable();
    accounts.dedup();
    if accounts.is_empty() {
        return Ok(label);
    }
    for (i, &a) in accounts.iter().enumerate() {
        node[a as usize] = i as u32;
    }
    let mut graph = GraphDataBuilder::new(accounts.len());
    for l in links {
        graph.add_edge(
            node[l.a as usize] as usize,
            node[l.b as usize] as usize,
            l.weight,
        )?;
    }
    let config = LeidenConfig {
        resolution,
        seed: Some(SEED),
        quality: QualityType::Modularity,
        ..LeidenConfig::default()
    };
    let found = Leiden::new(config).run(&graph.build()?)?;
    // Name each community by its smallest account index.
    let mut first = vec![u32::MAX; accounts.len()];
    for (i, &a) in accounts.iter().enumerate() {
        let c = found.partition.community_of(i);
        first[c] = first[c].min(a);
    }
    for (i, &a) in accounts.iter().enumerate() {
        label[a as usize] = first[found.partition.community_of(i)];
    }
    Ok(label)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clique(members: std::ops::Range<u32>, weight: f64, out: &mut Vec<WeightedLink>) {
        for a in members.clone() {
            for b in a + 1..members.end {
                out.push(WeightedLink { a, b, weight });
            }
        }
    }

    #[test]
    fn two_groups_joined_by_one_link_are_two_communities() {
        let mut links = Vec::new();
        clique(0..8, 2.0, &mut links);
        clique(8..20, 3.0, &mut links);
        links.push(WeightedLink {
            a: 7,
            b: 8,
            weight: 2.0,
        });
        let c = communities(22, &links, 1.0).unwrap();
        assert!(c[..8].iter().all(|&x| x == 0));
        assert!(c[8..20].iter().all(|&x| x == 8));
        assert_eq!(&c[20..], &[20, 21], "unlinked accounts are their own");
        assert_eq!(c, communities(22, &links, 1.0).unwrap(), "deterministic");
    }

    #[test]
    fn one_dense_group_stays_whole() {
        let mut links = Vec::new();
        clique(3..13, 2.5, &mut links);
        let c = communities(13, &links, 1.0).unwrap();
        assert!(c[3..].iter().all(|&x| x == 3));
    }
}
