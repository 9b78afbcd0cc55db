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

use std::io::{BufRead, Read};

use care_core::decode::{decode, decode_canonical, DecodeError, Decoded, Limits, SourceMapping};
use care_core::event::Kind;
use care_core::model::summary::{purchase_days, Folded, PurchaseDays};
use care_core::time::Buckets;
use rustc_hash::FxHashMap;

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
    Order { id: String, day: i64, amount: f64 },
    /// Not an order (or a skipped type).
    Other,
    Rejected(DecodeError),
}

impl LineDecoder {
    pub fn new(mapping: SourceMapping, canonical: bool, limits: Limits, days: Buckets, now_wall_ms: i64) -> LineDecoder {
        LineDecoder { mapping, canonical, limits, days, now_wall_ms }
    }

    fn line(&self, payload: &[u8]) -> Line {
        let decoded = if self.canonical {
            decode_canonical(payload, &self.mapping, self.limits, self.now_wall_ms)
        } else {
            decode(payload, &self.mapping, self.limits, self.now_wall_ms)
        };
        match decoded {
            Err(e) => Line::Rejected(e),
            Ok(Decoded::Event(ev)) if ev.kind == Kind::Order => {
                // An order without an amount still counts as a purchase.
                Line::Order { day: self.days.of(ev.ts_ms), amount: ev.amount.unwrap_or(0.0), id: ev.customer_id }
            }
            Ok(_) => Line::Other,
        }
    }

    /// Decodes a chunk's non-blank lines into `out` (emptied, kept for its
    /// capacity).
    fn chunk(&self, bytes: &[u8], mut out: Vec<Line>) -> Vec<Line> {
        out.extend(bytes.split(|&b| b == b'\n').map(<[u8]>::trim_ascii).filter(|l| !l.is_empty()).map(|l| self.line(l)));
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

/// Every customer's running figures, in first-appearance order.
pub struct Customers {
    index: FxHashMap<String, u32>,
    running: Vec<Running>,
    /// Orders of the customers kept whole: every customer when `keep_all`,
    /// else those marked unordered (second pass).
    kept: FxHashMap<u32, Vec<(i64, f64)>>,
    keep_all: bool,
    cal_end: i64,
    last_day: i64,
}

impl Customers {
    pub fn new(cal_end: i64, last_day: i64, keep_all: bool) -> Customers {
        Customers { index: FxHashMap::default(), running: Vec::new(), kept: FxHashMap::default(), keep_all, cal_end, last_day }
    }

    pub fn len(&self) -> usize {
        self.running.len()
    }

    /// Customers the running figures could not fold exactly.
    pub fn unordered(&self) -> usize {
        self.running.iter().filter(|r| r.unordered).count()
    }

    fn add(&mut self, id: String, day: i64, amount: f64) {
        let next = self.running.len() as u32;
        let i = *self.index.entry(id).or_insert(next);
        if i == next {
            self.running.push(Running::default());
        }
        let r = &mut self.running[i as usize];
        r.add(day, amount, self.cal_end);
        if self.keep_all {
            self.kept.entry(i).or_default().push((day, amount));
        }
    }

    /// Second pass: keeps the orders of the customers marked unordered.
    fn keep(&mut self, id: &str, day: i64, amount: f64) {
        if let Some(&i) = self.index.get(id) {
            if self.running[i as usize].unordered {
                self.kept.entry(i).or_default().push((day, amount));
            }
        }
    }

    /// `each(id, purchase days, holdout days)` of every customer with an
    /// order up to the calibration end, in first-appearance order; those
    /// marked unordered are folded from their kept orders.
    pub fn finish<T>(mut self, each: impl Fn(String, PurchaseDays, u32) -> T) -> Vec<T> {
        for (i, mut orders) in std::mem::take(&mut self.kept) {
            let r = &mut self.running[i as usize];
            if r.unordered {
                *r = Running::from_orders(&mut orders, self.cal_end);
            }
        }
        let mut ids = vec![String::new(); self.running.len()];
        for (id, i) in self.index {
            ids[i as usize] = id;
        }
        ids.into_iter().zip(self.running).filter_map(|(id, r)| Some(each(id, r.cal?, r.holdout_days))).collect()
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
    let mut pending: Vec<Vec<Line>> = Vec::new();
    // The chunk and line buffers are reused: fresh ones would cost a page
    // fault per 4 KiB on every chunk.
    let mut chunk = Vec::new();
    let mut spare: Vec<Vec<Line>> = Vec::new();
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
            for mut lines in pending.drain(..) {
                fold(&mut lines, customers, &mut counts, pass, progress);
                spare.push(lines);
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

/// Folds a chunk's lines, leaving `lines` empty.
fn fold(lines: &mut Vec<Line>, customers: &mut Customers, counts: &mut InputCounts, pass: Pass, progress: bool) {
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
            Line::Order { id, day, amount } => {
                counts.orders += 1;
                match pass {
                    Pass::First => customers.add(id, day, amount),
                    Pass::Second => customers.keep(&id, day, amount),
                }
            }
            Line::Other => counts.ignored += 1,
        }
    }
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
