//! Detector state that is not one of the customer's own fields: each
//! detector that keeps some defines its type in its own file and stores it
//! here under its state block's name, so a new detector adds no field to
//! [`super::Customer`]. Its block ([`super::codec::StateBlock`]) writes and
//! reads it through [`Extensions::get`] and [`Extensions::insert`].
//!
//! Made at a customer's first use: most customers never answer a survey,
//! and a customer with no such state carries 16 bytes for all of them.

use std::any::Any;
use std::fmt;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// What a state type needs to live in a customer: cloned with it (undo,
/// snapshots), compared with it (restore tests) and dumped with it
/// (`care state`). Every type with those traits has it.
pub trait StateValue: Any + fmt::Debug + Send + Sync {
    fn clone_box(&self) -> Box<dyn StateValue>;
    fn eq_dyn(&self, other: &dyn StateValue) -> bool;
    fn to_json(&self) -> serde_json::Value;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn heap_bytes(&self) -> usize;
}

impl<T: Any + fmt::Debug + Clone + PartialEq + Serialize + Send + Sync> StateValue for T {
    fn clone_box(&self) -> Box<dyn StateValue> {
        Box::new(self.clone())
    }

    fn eq_dyn(&self, other: &dyn StateValue) -> bool {
        other.as_any().downcast_ref::<T>() == Some(self)
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn heap_bytes(&self) -> usize {
        std::mem::size_of::<T>()
    }
}

type Entry = (&'static str, Box<dyn StateValue>);

/// Whether two block names are the same. Names are `&'static str`
/// constants, so the same name is nearly always the same pointer: checked
/// first, it spares a `memcmp` on every state lookup of the hot path.
fn same(a: &str, b: &str) -> bool {
    (std::ptr::eq(a.as_ptr(), b.as_ptr()) && a.len() == b.len()) || a == b
}

/// The detector states of one customer, each under its block's name.
/// The entries are a boxed slice, not a boxed `Vec`: a lookup follows one
/// pointer fewer (a cache miss fewer, for a customer not in cache), at 8
/// bytes more a customer. Entries are added at a customer's first use of
/// a detector's state, rarely: each addition makes a new slice.
#[derive(Default)]
pub struct Extensions(Option<Box<[Entry]>>);

impl Extensions {
    /// The state stored under `name`, if there is one of type `T`.
    pub fn get<T: StateValue>(&self, name: &str) -> Option<&T> {
        self.entries().find(|(n, _)| same(n, name)).and_then(|(_, v)| v.as_any().downcast_ref())
    }

    /// The state stored under `name`, mutably, if there is one of type `T`.
    pub fn get_mut<T: StateValue>(&mut self, name: &str) -> Option<&mut T> {
        self.0.iter_mut().flat_map(|e| e.iter_mut()).find(|(n, _)| same(n, name)).and_then(|(_, v)| v.as_any_mut().downcast_mut())
    }

    /// The state under `name`, made with `make` if there is none (or one of
    /// another type, which only a name shared by two blocks could cause).
    pub fn get_or_insert_with<T: StateValue>(&mut self, name: &'static str, make: impl FnOnce() -> T) -> &mut T {
        let found = self.entries().position(|(n, v)| same(n, name) && v.as_any().is::<T>());
        let at = match found {
            Some(at) => at,
            None => self.put(name, Box::new(make())),
        };
        let entries = self.0.as_mut().expect("an entry was found or put");
        entries[at].1.as_any_mut().downcast_mut().expect("the entry is a T")
    }

    /// Puts `value` under `name`, replacing what was there; returns its
    /// index.
    fn put(&mut self, name: &'static str, value: Box<dyn StateValue>) -> usize {
        let mut entries: Vec<Entry> = self.0.take().map(Vec::from).unwrap_or_default();
        entries.retain(|(n, _)| *n != name);
        entries.push((name, value));
        let at = entries.len() - 1;
        self.0 = Some(entries.into_boxed_slice());
        at
    }

    /// Stores `value` under `name`, replacing what was there.
    pub fn insert<T: StateValue>(&mut self, name: &'static str, value: T) {
        self.put(name, Box::new(value));
    }

    /// Drops the state under `name`, if any.
    pub fn remove(&mut self, name: &str) {
        if self.entries().any(|(n, _)| *n == name) {
            let kept: Vec<Entry> = self.0.take().map(Vec::from).unwrap_or_default().into_iter().filter(|(n, _)| *n != name).collect();
            self.0 = (!kept.is_empty()).then(|| kept.into_boxed_slice());
        }
    }

    /// Heap bytes held, for the state-size gauge.
    pub fn heap_bytes(&self) -> usize {
        self.0.as_ref().map_or(0, |e| std::mem::size_of_val::<[Entry]>(e) + e.iter().map(|(_, v)| v.heap_bytes()).sum::<usize>())
    }

    fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.0.iter().flat_map(|e| e.iter())
    }
}

impl Clone for Extensions {
    fn clone(&self) -> Extensions {
        Extensions(self.0.as_ref().map(|e| e.iter().map(|(n, v)| (*n, v.clone_box())).collect()))
    }
}

/// Equal when they hold equal states under the same names, in any order
/// (a restored customer's blocks come in id order, a live one's in the
/// order first used).
impl PartialEq for Extensions {
    fn eq(&self, other: &Extensions) -> bool {
        self.entries().count() == other.entries().count()
            && self.entries().all(|(n, v)| other.entries().any(|(m, w)| n == m && v.eq_dyn(w.as_ref())))
    }
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.entries().map(|(n, v)| (n, v))).finish()
    }
}

/// A map from block name to state, sorted by name so the dump is the same
/// however the states were made.
impl Serialize for Extensions {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut sorted: Vec<_> = self.entries().collect();
        sorted.sort_by_key(|(n, _)| *n);
        let mut map = s.serialize_map(Some(sorted.len()))?;
        for (n, v) in sorted {
            map.serialize_entry(n, &v.to_json())?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Default, PartialEq, Serialize)]
    struct A(u32);
    #[derive(Debug, Clone, Default, PartialEq, Serialize)]
    struct B {
        x: i64,
    }

    #[test]
    fn states_are_kept_by_name_and_compared_dumped_and_cloned_in_any_order() {
        let mut one = Extensions::default();
        assert_eq!(one.get::<A>("a"), None);
        assert_eq!(one.heap_bytes(), 0, "nothing held before the first use");
        one.get_or_insert_with("a", A::default).0 += 2;
        one.insert("b", B { x: 7 });
        assert_eq!((one.get::<A>("a"), one.get::<B>("b")), (Some(&A(2)), Some(&B { x: 7 })));
        assert_eq!(one.get::<B>("a"), None, "a name holds one type");
        let mut two = Extensions::default();
        two.insert("b", B { x: 7 });
        two.insert("a", A(2));
        assert_eq!(one, two, "the order they were made in does not matter");
        assert_eq!(serde_json::to_string(&one).unwrap(), r#"{"a":2,"b":{"x":7}}"#);
        assert_eq!(serde_json::to_string(&one).unwrap(), serde_json::to_string(&two).unwrap());
        let copy = one.clone();
        one.insert("a", A(3));
        assert_ne!(one, copy, "a clone is its own");
        assert_eq!(copy.get::<A>("a"), Some(&A(2)));
        assert!(one.heap_bytes() > 0);
        one.remove("a");
        one.remove("b");
        assert_eq!(one, Extensions::default());
        assert_eq!(one.heap_bytes(), 0, "all removed: back to nothing");
    }
}
