//! The role tree for hierarchical DRF: roles are paths (`eng/web/frontend`); each node is
//! ordered among its siblings by the weighted dominant share of its whole subtree, and
//! a role that has frameworks of its own competes with its children through a virtual
//! leaf holding only its own allocation (as Mesos does). Updated incrementally.

use crate::sorter::dominant_share;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use strata_resources::Scalar;

use crate::quota::Quantities;

/// The parent path of a role (`""` for a top-level role).
pub fn parent(role: &str) -> &str {
    role.rfind('/').map_or("", |i| &role[..i])
}

/// The role and each of its ancestors, deepest first (`a/b/c`, `a/b`, `a`).
pub fn self_and_ancestors(role: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(role);
    std::iter::from_fn(move || {
        let cur = next.filter(|r| !r.is_empty())?;
        let p = parent(cur);
        next = (!p.is_empty()).then_some(p);
        Some(cur)
    })
}

/// Whether `role` is `ancestor` or lies below it.
pub fn is_self_or_descendant(role: &str, ancestor: &str) -> bool {
    role == ancestor
        || (role.len() > ancestor.len()
            && role.starts_with(ancestor)
            && role.as_bytes().get(ancestor.len()) == Some(&b'/'))
}

#[derive(Debug, Clone, Default)]
struct Node {
    /// Allocated to this role itself.
    own: Quantities,
    /// Allocated to this role and every descendant.
    subtree: Quantities,
    /// Whether the role is tracked itself (frameworks or allocations), not only as an
    /// ancestor of tracked roles.
    leaf: bool,
    children: BTreeSet<String>,
    /// Children (by their subtree share) and this role's own leaf (by `own`), keyed by
    /// share then name; the own leaf is keyed by the role's own path.
    order: BTreeSet<(u64, String)>,
    /// This node's key in its parent's `order`.
    key: u64,
    /// The own leaf's key in this node's `order`.
    own_key: u64,
}

/// Hierarchical DRF over roles. The root is the empty path.
#[derive(Debug, Clone)]
pub struct RoleTree {
    nodes: HashMap<String, Node>,
    weights: BTreeMap<String, f64>,
}

impl Default for RoleTree {
    fn default() -> Self {
        Self {
            nodes: HashMap::from([(String::new(), Node::default())]),
            weights: BTreeMap::new(),
        }
    }
}

/// Order-preserving key of a non-negative share (positive f64 bits sort as integers).
fn share_key(share: f64) -> u64 {
    if share > 0.0 {
        share.to_bits()
    } else {
        0
    }
}

impl RoleTree {
    /// A role's weight (default 1).
    pub fn weight(&self, role: &str) -> f64 {
        self.weights.get(role).copied().unwrap_or(1.0)
    }

    /// Sets a role's weight (kept when the role is not tracked).
    pub fn set_weight(&mut self, role: &str, weight: f64, total: &Quantities) {
        self.weights.insert(role.to_string(), weight);
        if self.nodes.contains_key(role) {
            self.rekey_path(role, total);
        }
    }

    /// Every weight that was set.
    pub fn weights(&self) -> &BTreeMap<String, f64> {
        &self.weights
    }

    /// Starts tracking a role (and its ancestors as inner nodes).
    pub fn add(&mut self, role: &str) {
        if self.nodes.get(role).is_some_and(|n| n.leaf) {
            return;
        }
        let mut child: Option<String> = None;
        let mut path = role.to_string();
        loop {
            let created = !self.nodes.contains_key(&path);
            let node = self.nodes.entry(path.clone()).or_default();
            if let Some(c) = child.take() {
                if node.children.insert(c.clone()) {
                    node.order.insert((0, c));
                }
            }
            if path == role {
                node.leaf = true;
                node.own_key = 0;
                node.order.insert((0, path.clone()));
            }
            if !created || path.is_empty() {
                break;
            }
            child = Some(path.clone());
            path = parent(&path).to_string();
        }
    }

    /// Stops tracking a role as a leaf; nodes left with neither a leaf nor children are
    /// removed up the path. The caller ensures nothing is allocated to it.
    pub fn remove(&mut self, role: &str) {
        let Some(node) = self.nodes.get_mut(role) else {
            return;
        };
        if !node.leaf {
            return;
        }
        node.leaf = false;
        let own_key = node.own_key;
        node.order.remove(&(own_key, role.to_string()));
        self.prune(role);
    }

    fn prune(&mut self, role: &str) {
        let mut path = role.to_string();
        while !path.is_empty() {
            let removable = self
                .nodes
                .get(&path)
                .is_some_and(|n| !n.leaf && n.children.is_empty() && n.subtree.is_empty());
            if !removable {
                return;
            }
            let key = self.nodes.remove(&path).map_or(0, |n| n.key);
            let up = parent(&path).to_string();
            if let Some(p) = self.nodes.get_mut(&up) {
                p.children.remove(&path);
                p.order.remove(&(key, path.clone()));
            }
            path = up;
        }
    }

    /// Whether a role is tracked as a leaf.
    pub fn contains(&self, role: &str) -> bool {
        self.nodes.get(role).is_some_and(|n| n.leaf)
    }

    /// Tracked leaf roles.
    pub fn leaves(&self) -> impl Iterator<Item = &String> {
        self.nodes.iter().filter(|(_, n)| n.leaf).map(|(k, _)| k)
    }

    /// Leaf roles in hierarchical DRF order (lowest weighted share first at every level).
    pub fn order(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.walk("", &mut out);
        out
    }

    fn walk(&self, path: &str, out: &mut Vec<String>) {
        let Some(node) = self.nodes.get(path) else {
            return;
        };
        for (_, name) in &node.order {
            if name == path {
                out.push(name.clone());
            } else {
                self.walk(name, out);
            }
        }
    }

    /// Records quantities allocated to (`add`) or recovered from `role` (tracked first).
    pub fn update(&mut self, role: &str, delta: &Quantities, add: bool, total: &Quantities) {
        self.add(role);
        let apply = |q: &mut Quantities| {
            for (name, v) in delta {
                let slot = q.entry(name.clone()).or_insert(Scalar::ZERO);
                *slot = if add {
                    *slot + *v
                } else {
                    slot.saturating_sub(*v)
                };
            }
            q.retain(|_, v| *v > Scalar::ZERO);
        };
        if let Some(n) = self.nodes.get_mut(role) {
            apply(&mut n.own);
        }
        for path in self_and_ancestors(role) {
            if let Some(n) = self.nodes.get_mut(path) {
                apply(&mut n.subtree);
            }
        }
        self.rekey_path(role, total);
    }

    /// Recomputes the keys of `role` and its ancestors.
    fn rekey_path(&mut self, role: &str, total: &Quantities) {
        let own_share = self.nodes.get(role).map(|n| {
            let w = self.weight(role).max(f64::MIN_POSITIVE);
            share_key(dominant_share(&n.own, total) / w)
        });
        if let (Some(k), Some(n)) = (own_share, self.nodes.get_mut(role)) {
            if n.leaf {
                n.order.remove(&(n.own_key, role.to_string()));
                n.own_key = k;
                n.order.insert((k, role.to_string()));
            }
        }
        let paths: Vec<String> = self_and_ancestors(role).map(str::to_string).collect();
        for path in paths {
            let w = self.weight(&path).max(f64::MIN_POSITIVE);
            let Some(n) = self.nodes.get_mut(&path) else {
                continue;
            };
            let old = n.key;
            n.key = share_key(dominant_share(&n.subtree, total) / w);
            let new = n.key;
            if let Some(p) = self.nodes.get_mut(parent(&path)) {
                p.order.remove(&(old, path.clone()));
                p.order.insert((new, path.clone()));
            }
        }
    }

    /// Recomputes every key after the cluster total changed.
    pub fn rebuild(&mut self, total: &Quantities) {
        let roles: Vec<String> = self
            .nodes
            .keys()
            .filter(|k| !k.is_empty())
            .cloned()
            .collect();
        for n in self.nodes.values_mut() {
            n.order.clear();
        }
        for role in &roles {
            let w = self.weight(role).max(f64::MIN_POSITIVE);
            let Some(n) = self.nodes.get_mut(role) else {
                continue;
            };
            n.key = share_key(dominant_share(&n.subtree, total) / w);
            n.own_key = share_key(dominant_share(&n.own, total) / w);
            let (key, own_key, leaf) = (n.key, n.own_key, n.leaf);
            if leaf {
                n.order.insert((own_key, role.clone()));
            }
            if let Some(p) = self.nodes.get_mut(parent(role)) {
                p.order.insert((key, role.clone()));
            }
        }
    }

    /// A role's own weighted dominant share.
    pub fn share(&self, role: &str) -> f64 {
        self.nodes
            .get(role)
            .map_or(0.0, |n| f64::from_bits(n.own_key))
    }

    /// Quantities allocated to the role itself.
    pub fn allocated(&self, role: &str) -> Quantities {
        self.nodes
            .get(role)
            .map(|n| n.own.clone())
            .unwrap_or_default()
    }

    /// Quantities allocated to the role and its descendants.
    pub fn subtree_allocated(&self, role: &str) -> Quantities {
        self.nodes
            .get(role)
            .map(|n| n.subtree.clone())
            .unwrap_or_default()
    }

    /// Every node path (tracked leaves and their ancestors), for invariant checks.
    pub fn paths(&self) -> impl Iterator<Item = &String> {
        self.nodes.keys().filter(|k| !k.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::q;

    #[test]
    fn paths() {
        assert_eq!(parent("a/b/c"), "a/b");
        assert_eq!(parent("a"), "");
        assert_eq!(
            self_and_ancestors("a/b/c").collect::<Vec<_>>(),
            ["a/b/c", "a/b", "a"]
        );
        assert!(is_self_or_descendant("a/b", "a"));
        assert!(is_self_or_descendant("a", "a"));
        assert!(!is_self_or_descendant("ab", "a"));
        assert!(!is_self_or_descendant("a", "a/b"));
    }

    #[test]
    fn subtrees_compete_as_a_whole() {
        let total = q(&[("cpus", 100.0)]);
        let mut t = RoleTree::default();
        for r in ["eng/web", "eng/batch", "ops"] {
            t.add(r);
        }
        t.update("eng/web", &q(&[("cpus", 10.0)]), true, &total);
        t.update("eng/batch", &q(&[("cpus", 10.0)]), true, &total);
        t.update("ops", &q(&[("cpus", 15.0)]), true, &total);
        // eng holds 20 > ops 15: ops first, although each eng child holds less.
        assert_eq!(t.order(), ["ops", "eng/batch", "eng/web"]);
        t.set_weight("eng", 2.0, &total); // eng: 20/2 = 10 < 15
        assert_eq!(t.order(), ["eng/batch", "eng/web", "ops"]);
        assert_eq!(t.subtree_allocated("eng"), q(&[("cpus", 20.0)]));
    }

    #[test]
    fn a_role_with_frameworks_and_children_competes_through_its_own_leaf() {
        let total = q(&[("cpus", 100.0)]);
        let mut t = RoleTree::default();
        t.add("eng");
        t.add("eng/web");
        t.update("eng", &q(&[("cpus", 5.0)]), true, &total);
        t.update("eng/web", &q(&[("cpus", 1.0)]), true, &total);
        assert_eq!(t.order(), ["eng/web", "eng"]);
        t.update("eng/web", &q(&[("cpus", 9.0)]), true, &total);
        assert_eq!(t.order(), ["eng", "eng/web"]);
    }

    #[test]
    fn removing_leaves_prunes_empty_ancestors() {
        let total = q(&[("cpus", 10.0)]);
        let mut t = RoleTree::default();
        t.add("a/b/c");
        t.add("a/x");
        assert_eq!(t.paths().count(), 4);
        t.remove("a/b/c");
        assert_eq!(
            t.paths().cloned().collect::<BTreeSet<_>>(),
            ["a", "a/x"].map(String::from).into()
        );
        t.update("a/x", &q(&[("cpus", 1.0)]), true, &total);
        t.update("a/x", &q(&[("cpus", 1.0)]), false, &total);
        t.remove("a/x");
        assert_eq!(t.paths().count(), 0);
        assert!(t.order().is_empty());
        t.rebuild(&total);
        assert!(t.order().is_empty());
    }

    #[test]
    fn rebuild_matches_incremental_keys() {
        let total = q(&[("cpus", 10.0), ("mem", 100.0)]);
        let mut t = RoleTree::default();
        for (r, c) in [("a", 3.0), ("b/x", 1.0), ("b/y", 1.5), ("b", 0.5)] {
            t.update(r, &q(&[("cpus", c)]), true, &total);
        }
        let before = t.order();
        t.rebuild(&total);
        assert_eq!(t.order(), before);
        assert_eq!(before, ["a", "b", "b/x", "b/y"].map(String::from));
    }
}
