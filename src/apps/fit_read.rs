//! `care fit`'s read: order events in, each customer's purchase days out.
//!
//! The input is read in chunks cut at line ends; two threads decode the
//! halves of a chunk while this one folds the chunk before, in input order, so
//! counts, the first rejection's line number and the customers' order
//! (first appearance) are those of a plain loop. Canonical lines take the
//! decoder's fast path ([`decode_canonical`]).
//!
//! Memory is linear in customers: each holds a running
//! [`PurchaseDays`] and its holdout days, folded order by order. That is
//! exact while a customer's orders come in day order (or before their
//! first day), as exports of a topic keyed by customer do. An order inside
//! a customer's known range on a day not yet seen as first or last cannot
//! be told new or repeated without the list of days: such customers are
//! marked, and a second pass over the input keeps their orders and folds
//! them sorted, as the first pass does for everyone when the input cannot
//! be read twice.
//!
//! Customer ids are kept once, one after another in a single string, and
//! indexed by a table of 8-byte slots (an index and part of the id's hash,
//! hashed on the decoding threads): no allocation per customer or per line
//! reaches this thread, and growing the table never reads an id.

use std::hash::BuildHasher;
use std::io::{BufRead, Read};

use care_core::decode::{decode, decode_canonical, DecodeError, Decoded, Limits, SourceMapping};
use care_core::event::Kind;
use care_core::model::summary::{purchase_days, Folded, PurchaseDays};
use care_core::time::Buckets;
use hashbrown::hash_table::{Entry, HashTable};
use rustc_hash::{FxBuildHasher, FxHashMap};

use super::{FitAppError, InputCounts};

/// Bytes read at a time, decoded in two halves by two threads.
const CHUNK_BYTES: u64 = 8 << 20;
/// Input lines between progress updates on a terminal.
const PROGRESS_LINES: u64 = 1 << 20;

/// How lines become events: the canonical fast path or a source's mapping.
pub struct LineDecoder {
    mapping: SourceMapping,
    canonical: bool,
    limits: Limits,
    days: Buckets,
    now_wall_ms: i64,
}

/// One line, decoded where the decoding threads run.
enum Line {
    /// An order; its customer id is `ids[id..id + len]` of its [`Batch`].
    Order { id: u32, len: u32, hash: u64, day: i64, amount: f64 },
    /// Not an order (or a skipped type).
    Other,
    Rejected(DecodeError),
}

/// A half chunk's lines and their orders' customer ids, one after
/// another (the decoded id strings are freed on the thread that made them).
#[derive(Default)]
struct Batch {
    lines: Vec<Line>,
    ids: String,
}

impl LineDecoder {
    pub fn new(mapping: SourceMapping, canonical: bool, limits: Limits, days: Buckets, now_wall_ms: i64) -> LineDecoder {
        LineDecoder { mapping, canonical, limits, days, now_wall_ms }
    }

    fn line(&self, payload: &[u8], ids: &mut String) -> Line {
        let decoded = if self.canonical {
            decode_canonical(payload, &self.mapping, self.limits, self.now_wall_ms)
        } else {
            decode(payload, &self.mapping, self.limits, self.now_wall_ms)
        };
        match decoded {
            Err(e) => Line::Rejected(e),
            Ok(Decoded::Event(ev)) if ev.kind == Kind::Order => {
                // An order without an amount still counts as a purchase.
                let (id, len) = (ids.len() as u32, ev.customer_id.len() as u32);
                ids.push_str(&ev.customer_id);
                Line::Order { id, len, hash: FxBuildHasher.hash_one(ev.customer_id.as_str()), day: self.days.of(ev.ts_ms), amount: ev.amount.unwrap_or(0.0) }
            }
            Ok(_) => Line::Other,
        }
    }

    /// Decodes a chunk's non-blank lines into `out` (empty, kept for its
    /// capacity).
    fn chunk(&self, bytes: &[u8], mut out: Batch) -> Batch {
        let Batch { lines, ids } = &mut out;
        // Line ends found by memchr's vector search, not byte by byte.
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', bytes).chain([bytes.len()]) {
            let line = bytes[start..end].trim_ascii();
            start = end + 1;
            if !line.is_empty() {
                lines.push(self.line(line, ids));
            }
        }
        out
    }
}

/// A customer's running figures.
#[derive(Debug, Clone, Copy, Default)]
struct Running {
    /// Purchase days up to the calibration end; `None` until an order there.
    cal: Option<PurchaseDays>,
    /// Distinct purchase days after the calibration end, and the last one.
    holdout_days: u32,
    holdout_last: i64,
    /// An order came that the running figures cannot fold exactly.
    unordered: bool,
}

impl Running {
    fn add(&mut self, day: i64, amount: f64, cal_end: i64) {
        if day <= cal_end {
            match &mut self.cal {
                None => self.cal = Some(PurchaseDays::new(day, amount)),
                Some(p) => self.unordered |= p.add(day, amount) == Folded::Unordered,
            }
        } else if self.holdout_days == 0 || day > self.holdout_last {
            self.holdout_days += 1;
            self.holdout_last = day;
        } else if day < self.holdout_last {
            self.unordered = true;
        }
    }

    /// The exact figures from all of a customer's orders.
    fn from_orders(orders: &mut [(i64, f64)], cal_end: i64) -> Running {
        orders.sort_unstable_by_key(|x| x.0);
        let split = orders.partition_point(|x| x.0 <= cal_end);
        let (cal, hold) = orders.split_at_mut(split);
        let mut r = Running { cal: purchase_days(cal), ..Running::default() };
        for &(d, _) in hold.iter() {
            if r.holdout_days == 0 || d != r.holdout_last {
                r.holdout_days += 1;
                r.holdout_last = d;
            }
        }
        r
    }
}

/// A slot of the customer index: the customer's number and the high half
/// of their id's hash, from which the table's hash is rebuilt when it grows.
#[derive(Clone, Copy)]
struct Slot {
    customer: u32,
    tag: u32,
}

impl Slot {
    fn tag(hash: u64) -> u32 {
        (hash >> 32) as u32
    }

    /// The table's hash of a tag: multiplied out so that its top bits,
    /// which the table keeps as a fingerprint, vary with every bit.
    fn hash(tag: u32) -> u64 {
        u64::from(tag).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

/// Every customer's running figures, in first-appearance order.
pub struct Customers {
    index: HashTable<Slot>,
    /// Every customer's id, one after another; customer i's ends at `ends[i]`.
    ids: String,
    ends: Vec<usize>,
    running: Vec<Running>,
    /// The hash and number of the last order's customer: the orders of one
    /// customer often come together (exports sorted by customer), and then
    /// need no look-up in the index.
    last: Option<(u64, u32)>,
    /// Orders of the customers kept whole: every customer when `keep_all`,
    /// else those marked unordered (second pass).
    kept: FxHashMap<u32, Vec<(i64, f64)>>,
    keep_all: bool,
    cal_end: i64,
    last_day: i64,
}

/// The customers with an order up to the calibration end, in
/// first-appearance order, as columns.
pub struct Buyers {
    /// Every buyer's id, one after another; buyer i's ends at `ends[i]`.
    ids: String,
    ends: Vec<usize>,
    pub days: Vec<PurchaseDays>,
    /// Distinct purchase days in the holdout period.
    pub holdout_days: Vec<u32>,
}

impl Buyers {
    pub fn id(&self, i: usize) -> &str {
        id_of(&self.ids, &self.ends, i)
    }
}

fn id_of<'a>(ids: &'a str, ends: &[usize], i: usize) -> &'a str {
    let start = if i == 0 { 0 } else { ends[i - 1] };
    &ids[start..ends[i]]
}

impl Customers {
    pub fn new(cal_end: i64, last_day: i64, keep_all: bool) -> Customers {
        Customers { index: HashTable::new(), ids: String::new(), ends: Vec::new(), running: Vec::new(), last: None, kept: FxHashMap::default(), keep_all, cal_end, last_day }
    }

    pub fn len(&self) -> usize {
        self.running.len()
    }

    /// Customers the running figures could not fold exactly.
    pub fn unordered(&self) -> usize {
        self.running.iter().filter(|r| r.unordered).count()
    }

    /// The number of the customer `id` (whose [`FxBuildHasher`] hash is
    /// `hash`), if seen.
    fn find(&self, id: &str, hash: u64) -> Option<u32> {
        let tag = Slot::tag(hash);
        self.index.find(Slot::hash(tag), |s| s.tag == tag && id_of(&self.ids, &self.ends, s.customer as usize) == id).map(|s| s.customer)
    }

    pub(super) fn add(&mut self, id: &str, hash: u64, day: i64, amount: f64) {
        let i = match self.last {
            Some((h, i)) if h == hash && id_of(&self.ids, &self.ends, i as usize) == id => i,
            _ => self.number(id, hash),
        };
        self.last = Some((hash, i));
        self.running[i as usize].add(day, amount, self.cal_end);
        if self.keep_all {
            self.kept.entry(i).or_default().push((day, amount));
        }
    }

    /// The number of the customer `id` (hash `hash`), a new one if unseen.
    fn number(&mut self, id: &str, hash: u64) -> u32 {
        let tag = Slot::tag(hash);
        let (ids, ends) = (&self.ids, &self.ends);
        match self.index.entry(Slot::hash(tag), |s| s.tag == tag && id_of(ids, ends, s.customer as usize) == id, |s| Slot::hash(s.tag)) {
            Entry::Occupied(e) => e.get().customer,
            Entry::Vacant(e) => {
                let customer = self.running.len() as u32;
                e.insert(Slot { customer, tag });
                self.ids.push_str(id);
                self.ends.push(self.ids.len());
                self.running.push(Running::default());
                customer
            }
        }
    }

    /// Second pass: keeps the orders of the customers marked unordered.
    fn keep(&mut self, id: &str, hash: u64, day: i64, amount: f64) {
        if let Some(i) = self.find(id, hash) {
            if self.running[i as usize].unordered {
                self.kept.entry(i).or_default().push((day, amount));
            }
        }
    }

    /// The customers with an order up to the calibration end; those
    /// marked unordered are folded from their kept orders.
    pub fn finish(mut self) -> Buyers {
        for (i, mut orders) in std::mem::take(&mut self.kept) {
            let r = &mut self.running[i as usize];
            if r.unordered {
                *r = Running::from_orders(&mut orders, self.cal_end);
            }
        }
        drop(self.index);
        let days: Vec<PurchaseDays> = self.running.iter().filter_map(|r| r.cal).collect();
        let holdout_days = self.running.iter().filter(|r| r.cal.is_some()).map(|r| r.holdout_days).collect();
        if days.len() == self.running.len() {
            return Buyers { ids: self.ids, ends: self.ends, days, holdout_days };
        }
        // Some customers first bought after the calibration end: their ids go.
        let (mut ids, mut ends) = (String::new(), Vec::with_capacity(days.len()));
        for (i, _) in self.running.iter().enumerate().filter(|(_, r)| r.cal.is_some()) {
            ids.push_str(id_of(&self.ids, &self.ends, i));
            ends.push(ids.len());
        }
        Buyers { ids, ends, days, holdout_days }
    }
}

/// One pass over the input: the first folds every order up to
/// `last_day` and counts; the second keeps the marked customers' orders.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    First,
    Second,
}

/// Reads `input` through `dec` into `customers`.
pub fn read(dec: &LineDecoder, input: &mut dyn BufRead, customers: &mut Customers, pass: Pass, progress: bool) -> Result<InputCounts, FitAppError> {
    let mut counts = InputCounts::default();
    let mut pending: Vec<Batch> = Vec::new();
    // The chunk and line buffers are reused: fresh ones would cost a page
    // fault per 4 KiB on every chunk.
    let mut chunk = Vec::new();
    let mut spare: Vec<Batch> = Vec::new();
    loop {
        next_chunk(input, CHUNK_BYTES, &mut chunk)?;
        let halves = halve(&chunk);
        let decoded = std::thread::scope(|s| {
            let handles: Vec<_> = halves
                .iter()
                .filter(|c| !c.is_empty())
                .map(|c| {
                    let out = spare.pop().unwrap_or_default();
                    s.spawn(|| dec.chunk(c, out))
                })
                .collect();
            for mut batch in pending.drain(..) {
                fold(&mut batch, customers, &mut counts, pass, progress);
                spare.push(batch);
            }
            handles.into_iter().map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect::<Vec<_>>()
        });
        if decoded.is_empty() {
            break;
        }
        pending = decoded;
    }
    if progress && counts.lines >= PROGRESS_LINES {
        eprintln!("\rcare fit: {} lines, {} customers", counts.lines, customers.len());
    }
    Ok(counts)
}

/// Folds a chunk's lines, leaving `batch` empty.
fn fold(batch: &mut Batch, customers: &mut Customers, counts: &mut InputCounts, pass: Pass, progress: bool) {
    let Batch { lines, ids } = batch;
    for line in lines.drain(..) {
        counts.lines += 1;
        if progress && counts.lines % PROGRESS_LINES == 0 {
            eprint!("\rcare fit: {} lines, {} customers", counts.lines, customers.len());
        }
        match line {
            Line::Rejected(e) => {
                if counts.rejected == 0 && pass == Pass::First {
                    eprintln!("care fit: line {} rejected ({e}); counting the rest", counts.lines);
                }
                counts.rejected += 1;
            }
            Line::Order { day, .. } if day > customers.last_day => counts.ignored += 1,
            Line::Order { id, len, hash, day, amount } => {
                counts.orders += 1;
                let id = &ids[id as usize..(id + len) as usize];
                match pass {
                    Pass::First => customers.add(id, hash, day, amount),
                    Pass::Second => customers.keep(id, hash, day, amount),
                }
            }
            Line::Other => counts.ignored += 1,
        }
    }
    ids.clear();
}

/// `chunk` cut in two at the line end nearest its middle, so that even a
/// small input is decoded on both cores.
pub(super) fn halve(chunk: &[u8]) -> [&[u8]; 2] {
    let middle = chunk.len() / 2;
    let cut = chunk[middle..].iter().position(|&b| b == b'\n').map_or(chunk.len(), |i| middle + i + 1);
    let (a, b) = chunk.split_at(cut);
    [a, b]
}

/// Replaces `buf` with the next `size` bytes or so of `input`, ending at
/// a line's end (or the input's); empty at the end of the input.
pub(super) fn next_chunk(input: &mut dyn BufRead, size: u64, buf: &mut Vec<u8>) -> Result<(), FitAppError> {
    buf.clear();
    (&mut *input).take(size).read_to_end(buf).map_err(FitAppError::Read)?;
    if buf.last().is_some_and(|&b| b != b'\n') {
        input.read_until(b'\n', buf).map_err(FitAppError::Read)?;
    }
    Ok(())
}
