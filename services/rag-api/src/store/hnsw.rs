//! A hierarchical navigable small-world graph (HNSW, after Malkov and
//! Yashunin) over unit vectors that live elsewhere: node `i` is slot `i`
//! of the collection's arena, and nodes are added in slot order. Closeness
//! is the dot product (the cosine, for unit vectors); higher is closer.
//!
//! Each node draws a top level from a geometric distribution (most stay on
//! level 0); a search walks greedily down from the top level's entry point
//! and widens to `ef` candidates on level 0. Links are chosen with the
//! paper's heuristic (a candidate is kept only if it is closer to the new
//! node than to every neighbour kept so far, then the list is filled up
//! with the closest of the rest), which keeps clustered data navigable.
//! Removal is the caller's business: removed slots stay in the graph as
//! waypoints and are filtered out of results.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

/// The graph's shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GraphParams {
    /// Links per node on the upper levels (twice this on level 0).
    pub m: usize,
    /// Candidates considered when linking a new node.
    pub ef_construction: usize,
}

impl Default for GraphParams {
    fn default() -> Self {
        Self {
            m: 16,
            ef_construction: 100,
        }
    }
}

/// Unit vectors of `dims`, one after another.
#[derive(Debug, Clone, Copy)]
pub struct VectorsRef<'a> {
    pub data: &'a [f32],
    pub dims: usize,
}

impl<'a> VectorsRef<'a> {
    /// Vector `i`.
    pub fn get(&self, i: u32) -> &'a [f32] {
        let at = i as usize * self.dims;
        &self.data[at..at + self.dims]
    }
}

/// An empty link.
const NONE: u32 = u32::MAX;
/// No node is placed above this level.
const MAX_LEVEL: usize = 16;

/// A node with its closeness to the current query, ordered by closeness.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Near(f32, u32);

impl Eq for Near {}

impl PartialOrd for Near {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Near {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then(other.1.cmp(&self.1))
    }
}

/// The same, ordered farthest first (the top of a heap of results is the
/// one to drop).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Far(std::cmp::Reverse<Near>);

/// Which nodes a search has seen.
struct Visited(Vec<u64>);

impl Visited {
    fn new(n: usize) -> Self {
        Self(vec![0; n.div_ceil(64)])
    }

    /// Marks `i`; true if it was not marked before.
    fn insert(&mut self, i: u32) -> bool {
        let (word, bit) = (i as usize / 64, 1u64 << (i % 64));
        let fresh = self.0[word] & bit == 0;
        self.0[word] |= bit;
        fresh
    }
}

/// The graph.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    params: GraphParams,
    /// Level-0 links, `2m` per node, unused places `NONE`.
    level0: Vec<u32>,
    /// Links on levels 1.. for the few nodes that reach them.
    upper: HashMap<u32, Vec<Vec<u32>>>,
    /// The node on the highest level, and that level.
    entry: Option<(u32, usize)>,
    len: usize,
}

/// Dot product in 8 lanes (the compiler vectorizes this form).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// A node's top level, drawn from `-ln(u) / ln(m)` with `u` from a hash of
/// the node's number: the same graph for the same data, every time.
fn level_of(node: u32, m: usize) -> usize {
    let mut z = u64::from(node).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    // 53 random bits as a number in (0, 1].
    let u = ((z >> 11) + 1) as f64 / (1u64 << 53) as f64;
    let level = -u.ln() / (m.max(2) as f64).ln();
    (level as usize).min(MAX_LEVEL)
}

impl Graph {
    /// An empty graph.
    pub fn new(params: GraphParams) -> Self {
        Self {
            params,
            ..Self::default()
        }
    }

    /// Nodes in the graph (slots `0..len`).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn m0(&self) -> usize {
        self.params.m * 2
    }

    fn links(&self, node: u32, level: usize) -> &[u32] {
        if level == 0 {
            let at = node as usize * self.m0();
            let row = &self.level0[at..at + self.m0()];
            let used = row.iter().position(|&x| x == NONE).unwrap_or(row.len());
            &row[..used]
        } else {
            self.upper
                .get(&node)
                .and_then(|levels| levels.get(level - 1))
                .map_or(&[], Vec::as_slice)
        }
    }

    fn set_links(&mut self, node: u32, level: usize, links: &[u32]) {
        if level == 0 {
            let m0 = self.m0();
            let row = &mut self.level0[node as usize * m0..(node as usize + 1) * m0];
            row.fill(NONE);
            row[..links.len()].copy_from_slice(links);
        } else if let Some(levels) = self.upper.get_mut(&node) {
            levels[level - 1] = links.to_vec();
        }
    }

    /// The `ef` nodes closest to `q` on `level`, found from `entries`,
    /// closest first.
    fn search_level(
        &self,
        vectors: VectorsRef<'_>,
        q: &[f32],
        entries: &[Near],
        ef: usize,
        level: usize,
    ) -> Vec<Near> {
        let mut visited = Visited::new(self.len);
        let mut candidates: BinaryHeap<Near> = BinaryHeap::new();
        let mut results: BinaryHeap<Far> = BinaryHeap::new();
        for &e in entries {
            visited.insert(e.1);
            candidates.push(e);
            results.push(Far(std::cmp::Reverse(e)));
        }
        while results.len() > ef {
            results.pop();
        }
        while let Some(c) = candidates.pop() {
            let worst = results.peek().map_or(f32::NEG_INFINITY, |f| (f.0).0.0);
            if c.0 < worst && results.len() >= ef {
                break;
            }
            for &n in self.links(c.1, level) {
                if !visited.insert(n) {
                    continue;
                }
                let s = dot(q, vectors.get(n));
                let worst = results.peek().map_or(f32::NEG_INFINITY, |f| (f.0).0.0);
                if results.len() < ef || s > worst {
                    candidates.push(Near(s, n));
                    results.push(Far(std::cmp::Reverse(Near(s, n))));
                    if results.len() > ef {
                        results.pop();
                    }
                }
            }
        }
        let mut out: Vec<Near> = results.into_iter().map(|f| (f.0).0).collect();
        out.sort_by(|a, b| b.cmp(a));
        out
    }

    /// Up to `m` of `candidates` (closest first) to link to: the heuristic
    /// choice, filled up with the closest of those it passed over.
    fn choose(&self, vectors: VectorsRef<'_>, candidates: &[Near], m: usize) -> Vec<u32> {
        let mut chosen: Vec<u32> = Vec::with_capacity(m);
        let mut passed: Vec<u32> = Vec::new();
        for c in candidates {
            if chosen.len() >= m {
                break;
            }
            let v = vectors.get(c.1);
            if chosen.iter().all(|&k| dot(v, vectors.get(k)) < c.0) {
                chosen.push(c.1);
            } else {
                passed.push(c.1);
            }
        }
        let room = m.saturating_sub(chosen.len());
        chosen.extend(passed.into_iter().take(room));
        chosen
    }

    /// Adds node `len()`, whose vector is `vectors.get(len())`.
    pub fn insert(&mut self, vectors: VectorsRef<'_>) {
        let node = u32::try_from(self.len).unwrap_or(NONE);
        let level = level_of(node, self.params.m);
        self.level0
            .extend(std::iter::repeat_n(NONE, self.params.m * 2));
        if level > 0 {
            self.upper.insert(node, vec![Vec::new(); level]);
        }
        self.len += 1;
        let q = vectors.get(node);
        let Some((entry, top)) = self.entry else {
            self.entry = Some((node, level));
            return;
        };
        let mut nearest = vec![Near(dot(q, vectors.get(entry)), entry)];
        for l in (level + 1..=top).rev() {
            nearest = self.search_level(vectors, q, &nearest, 1, l);
        }
        for l in (0..=level.min(top)).rev() {
            let found = self.search_level(vectors, q, &nearest, self.params.ef_construction, l);
            let cap = if l == 0 { self.m0() } else { self.params.m };
            let chosen = self.choose(vectors, &found, self.params.m);
            self.set_links(node, l, &chosen);
            for &n in &chosen {
                let mut links = self.links(n, l).to_vec();
                if links.len() < cap {
                    links.push(node);
                } else {
                    // Full: the heuristic picks again among the old links
                    // and the new node, as seen from `n`.
                    let v = vectors.get(n);
                    let mut around: Vec<Near> = links
                        .iter()
                        .chain(std::iter::once(&node))
                        .map(|&k| Near(dot(v, vectors.get(k)), k))
                        .collect();
                    around.sort_by(|a, b| b.cmp(a));
                    links = self.choose(vectors, &around, cap);
                }
                self.set_links(n, l, &links);
            }
            nearest = found;
        }
        if level > top {
            self.entry = Some((node, level));
        }
    }

    /// The nodes closest to `q`, closest first: `ef` candidates on level 0
    /// (at least `k`), of which those `keep` accepts, at most `k`.
    pub fn search(
        &self,
        vectors: VectorsRef<'_>,
        q: &[f32],
        k: usize,
        ef: usize,
        keep: impl Fn(u32) -> bool,
    ) -> Vec<(f32, u32)> {
        let Some((entry, top)) = self.entry else {
            return Vec::new();
        };
        let mut nearest = vec![Near(dot(q, vectors.get(entry)), entry)];
        for l in (1..=top).rev() {
            nearest = self.search_level(vectors, q, &nearest, 1, l);
        }
        self.search_level(vectors, q, &nearest, ef.max(k), 0)
            .into_iter()
            .filter(|n| keep(n.1))
            .take(k)
            .map(|n| (n.0, n.1))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Clustered unit vectors: `n` points around `n / 50` centres.
    pub(crate) fn clustered(n: usize, dims: usize, seed: u64) -> Vec<f32> {
        let mut state = seed;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        let centres: Vec<Vec<f32>> = (0..(n / 50).max(1))
            .map(|_| (0..dims).map(|_| next()).collect())
            .collect();
        let mut out = Vec::with_capacity(n * dims);
        for i in 0..n {
            let c = &centres[i % centres.len()];
            let v: Vec<f32> = c.iter().map(|x| x + 0.4 * next()).collect();
            let norm = dot(&v, &v).sqrt();
            out.extend(v.iter().map(|x| x / norm));
        }
        out
    }

    fn exact(vectors: VectorsRef<'_>, n: usize, q: &[f32], k: usize) -> Vec<u32> {
        let mut all: Vec<Near> = (0..n as u32)
            .map(|i| Near(dot(q, vectors.get(i)), i))
            .collect();
        all.sort_by(|a, b| b.cmp(a));
        all.into_iter().take(k).map(|n| n.1).collect()
    }

    #[test]
    fn finds_what_an_exact_search_finds() {
        let (n, dims) = (4000, 48);
        let data = clustered(n, dims, 7);
        let queries = clustered(100, dims, 99);
        let vectors = VectorsRef { data: &data, dims };
        let mut graph = Graph::new(GraphParams::default());
        for _ in 0..n {
            graph.insert(vectors);
        }
        assert_eq!(graph.len(), n);
        let (mut found, mut wanted) = (0, 0);
        for q in queries.chunks(dims) {
            let truth = exact(vectors, n, q, 10);
            let got: Vec<u32> = graph
                .search(vectors, q, 10, 64, |_| true)
                .iter()
                .map(|h| h.1)
                .collect();
            assert!(got.windows(2).all(|w| w[0] != w[1]));
            found += truth.iter().filter(|t| got.contains(t)).count();
            wanted += truth.len();
        }
        let recall = found as f64 / wanted as f64;
        assert!(recall >= 0.95, "recall@10 {recall}");
    }

    #[test]
    fn leaves_out_what_the_filter_refuses() {
        let (n, dims) = (600, 16);
        let data = clustered(n, dims, 3);
        let vectors = VectorsRef { data: &data, dims };
        let mut graph = Graph::new(GraphParams::default());
        for _ in 0..n {
            graph.insert(vectors);
        }
        let q = vectors.get(10);
        let all = graph.search(vectors, q, 5, 64, |_| true);
        assert_eq!(all[0].1, 10, "a stored vector finds itself first");
        let odd = graph.search(vectors, q, 5, 64, |i| i % 2 == 1);
        assert_eq!(odd.len(), 5);
        assert!(odd.iter().all(|h| h.1 % 2 == 1));
        assert!(odd.windows(2).all(|w| w[0].0 >= w[1].0));
    }

    #[test]
    fn an_empty_graph_finds_nothing() {
        let graph = Graph::new(GraphParams::default());
        let vectors = VectorsRef { data: &[], dims: 4 };
        assert!(
            graph
                .search(vectors, &[1.0, 0.0, 0.0, 0.0], 3, 16, |_| true)
                .is_empty()
        );
    }

    #[test]
    fn levels_thin_out_geometrically() {
        let upper = (0..100_000u32).filter(|&i| level_of(i, 16) > 0).count();
        // 1/16 of the nodes reach level 1.
        assert!((5_500..7_000).contains(&upper), "{upper}");
    }
}
