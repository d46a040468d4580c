//! The vectors of one collection: an arena of slots (one per chunk, in the
//! order they arrived), removed slots marked dead, and a graph over the
//! first slots that a background indexer extends.
//!
//! A search is exact when the collection is small; otherwise it asks the
//! graph about the slots it covers and scans the rest exactly, so a chunk is
//! found the moment it is stored, however far the indexer is behind. When
//! more slots are dead than alive the arena is rebuilt from the live ones
//! and the graph starts again (exact search covers the gap).

use std::sync::Arc;

use super::hnsw::{Graph, GraphParams, VectorsRef, dot};

/// How the index searches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IndexParams {
    /// Up to this many slots a search is exact and no graph is built.
    pub exact_max: usize,
    /// Candidates a graph search keeps on level 0 (at least the limit).
    pub ef_search: usize,
    pub graph: GraphParams,
}

impl Default for IndexParams {
    fn default() -> Self {
        Self {
            exact_max: 4096,
            ef_search: 64,
            graph: GraphParams::default(),
        }
    }
}

/// Who a slot belongs to: a document and the chunk's position in it.
#[derive(Debug, Clone)]
pub struct Owner {
    pub document: Arc<str>,
    pub position: usize,
}

/// One collection's vectors.
#[derive(Debug, Clone)]
pub struct Vectors {
    dims: usize,
    params: IndexParams,
    data: Vec<f32>,
    /// `None` once removed.
    owners: Vec<Option<Owner>>,
    live: usize,
    graph: Graph,
}

impl Vectors {
    pub fn new(dims: usize, params: IndexParams) -> Self {
        Self {
            dims,
            params,
            data: Vec::new(),
            owners: Vec::new(),
            live: 0,
            graph: Graph::new(params.graph),
        }
    }

    fn view(&self) -> VectorsRef<'_> {
        VectorsRef {
            data: &self.data,
            dims: self.dims,
        }
    }

    /// Stores `vector` for `owner`; its slot.
    pub fn push(&mut self, owner: Owner, vector: &[f32]) -> u32 {
        debug_assert_eq!(vector.len(), self.dims);
        let slot = u32::try_from(self.owners.len()).unwrap_or(u32::MAX);
        self.data.extend_from_slice(vector);
        self.owners.push(Some(owner));
        self.live += 1;
        slot
    }

    /// Marks `slot` dead.
    pub fn remove(&mut self, slot: u32) {
        if let Some(o) = self.owners.get_mut(slot as usize)
            && o.take().is_some()
        {
            self.live -= 1;
        }
    }

    /// The vector in `slot`.
    pub fn vector(&self, slot: u32) -> &[f32] {
        self.view().get(slot)
    }

    /// Who owns `slot`, if it is alive.
    pub fn owner(&self, slot: u32) -> Option<&Owner> {
        self.owners.get(slot as usize)?.as_ref()
    }

    /// Live slots.
    pub fn live(&self) -> usize {
        self.live
    }

    /// Slots the graph covers, of all slots.
    pub fn indexed(&self) -> (usize, usize) {
        (self.graph.len(), self.owners.len())
    }

    /// Whether the indexer has work here.
    pub fn pending(&self) -> bool {
        self.owners.len() > self.params.exact_max && self.graph.len() < self.owners.len()
    }

    /// Adds up to `n` slots to the graph; how many it added.
    pub fn index_some(&mut self, n: usize) -> usize {
        let mut added = 0;
        while added < n && self.pending() {
            let data = &self.data;
            self.graph.insert(VectorsRef {
                data,
                dims: self.dims,
            });
            added += 1;
        }
        added
    }

    /// Whether dead slots outweigh live ones enough to rebuild.
    pub fn wasteful(&self) -> bool {
        let dead = self.owners.len() - self.live;
        dead > 1024 && dead > self.live
    }

    /// The live slots, moved to a new arena (the graph starts again); each
    /// old slot's new number, if it lives.
    pub fn compacted(&self) -> (Self, Vec<Option<u32>>) {
        let mut fresh = Self::new(self.dims, self.params);
        let moved = (0..self.owners.len())
            .map(|i| {
                let slot = u32::try_from(i).unwrap_or(u32::MAX);
                self.owner(slot)
                    .map(|o| fresh.push(o.clone(), self.vector(slot)))
            })
            .collect();
        (fresh, moved)
    }

    /// The `limit` live slots closest to `q` scoring at least `threshold`,
    /// closest first.
    pub fn search(&self, q: &[f32], limit: usize, threshold: f32) -> Vec<(f32, u32)> {
        let total = self.owners.len();
        let alive = |slot: u32| self.owners[slot as usize].is_some();
        let (mut hits, exact_from) = if total <= self.params.exact_max || self.graph.is_empty() {
            (Vec::new(), 0)
        } else {
            let ef = self.params.ef_search.max(limit);
            (
                self.graph.search(self.view(), q, limit, ef, alive),
                self.graph.len(),
            )
        };
        let view = self.view();
        for slot in exact_from..total {
            let slot = u32::try_from(slot).unwrap_or(u32::MAX);
            if alive(slot) {
                hits.push((dot(q, view.get(slot)), slot));
            }
        }
        hits.retain(|h| h.0 >= threshold);
        hits.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        hits.truncate(limit);
        hits
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn unit(i: usize, dims: usize) -> Vec<f32> {
        // Points on a circle in the first two dimensions, spread over the rest.
        let a = i as f32 * 0.001;
        let mut v = vec![0.0; dims];
        v[0] = a.cos();
        v[1] = a.sin();
        v
    }

    fn owner(i: usize) -> Owner {
        Owner {
            document: Arc::from(format!("d{i}")),
            position: 0,
        }
    }

    fn small() -> IndexParams {
        IndexParams {
            exact_max: 100,
            ..IndexParams::default()
        }
    }

    #[test]
    fn graph_and_tail_give_the_exact_answer() {
        let mut vs = Vectors::new(8, small());
        for i in 0..1000 {
            vs.push(owner(i), &unit(i, 8));
        }
        let q = unit(500, 8);
        let exact = vs.search(&q, 5, -1.0);
        assert_eq!(exact[0].1, 500);
        // Half indexed: graph for the first part, exact for the rest.
        vs.index_some(600);
        assert_eq!(vs.indexed(), (600, 1000));
        assert_eq!(vs.search(&q, 5, -1.0), exact);
        while vs.index_some(100) > 0 {}
        assert!(!vs.pending());
        assert_eq!(vs.search(&q, 5, -1.0), exact);
    }

    #[test]
    fn dead_slots_are_never_found_and_compaction_keeps_the_living() {
        let mut vs = Vectors::new(8, small());
        for i in 0..3000 {
            vs.push(owner(i), &unit(i, 8));
        }
        while vs.index_some(500) > 0 {}
        for slot in 0..2000 {
            vs.remove(slot);
        }
        assert_eq!(vs.live(), 1000);
        assert!(vs.wasteful());
        let hits = vs.search(&unit(100, 8), 3, -1.0);
        assert!(hits.iter().all(|h| h.1 >= 2000), "{hits:?}");
        let (fresh, moved) = vs.compacted();
        assert_eq!(fresh.live(), 1000);
        assert_eq!(moved[2500], Some(500));
        assert_eq!(moved[5], None);
        assert_eq!(fresh.owner(500).unwrap().document.as_ref(), "d2500");
        assert_eq!(fresh.search(&unit(2500, 8), 1, -1.0)[0].1, 500);
    }

    #[test]
    fn the_threshold_cuts_weak_hits() {
        let mut vs = Vectors::new(8, small());
        for i in 0..50 {
            vs.push(owner(i), &unit(i * 100, 8));
        }
        let hits = vs.search(&unit(0, 8), 50, 0.99);
        assert!(!hits.is_empty() && hits.len() < 50);
        assert!(hits.iter().all(|h| h.0 >= 0.99));
    }
}
