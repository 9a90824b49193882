//! Time to the last member: for each message, the latest of its
//! deliveries, so a large room's figure is how long its slowest member
//! waited, not the average member.
//!
//! Every message is a slot (sender × its number), fixed in size before the
//! run; a delivery raises the slot's maximum latency and its count without
//! a lock. At the end, a message whose count reached its room's size gives
//! one sample.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use hdrhistogram::Histogram;

/// The most slots a run may ask for (~12 bytes each).
pub const MAX_SLOTS: u64 = 8_000_000;

#[derive(Debug)]
pub struct LastDelivery {
    per_sender: u64,
    /// The room size each sender's messages must reach.
    members: Vec<u32>,
    latest_us: Vec<AtomicU64>,
    count: Vec<AtomicU32>,
}

impl LastDelivery {
    /// `members[s]`: how many clients sender `s`'s room holds.
    pub fn new(members: Vec<u32>, per_sender: u64) -> anyhow::Result<Self> {
        let slots = per_sender.saturating_mul(members.len() as u64);
        anyhow::ensure!(
            slots <= MAX_SLOTS,
            "--last-delivery tracks at most {MAX_SLOTS} messages: lower --messages (or --rate × --duration) or --senders"
        );
        let slots = slots as usize;
        Ok(Self {
            per_sender,
            members,
            latest_us: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            count: (0..slots).map(|_| AtomicU32::new(0)).collect(),
        })
    }

    /// One delivery of `sender`'s message `seq`, `latency_us` after its send.
    pub fn record(&self, sender: usize, seq: u64, latency_us: u64) {
        if sender >= self.members.len() || seq >= self.per_sender {
            return;
        }
        let slot = sender * self.per_sender as usize + seq as usize;
        self.latest_us[slot].fetch_max(latency_us, Ordering::Relaxed);
        self.count[slot].fetch_add(1, Ordering::Relaxed);
    }

    /// The latencies to the last member of every message that reached all
    /// members, and how many did.
    pub fn histogram(&self) -> (Histogram<u64>, u64) {
        let mut hist = crate::run::latency_histogram();
        let mut complete = 0;
        for (slot, count) in self.count.iter().enumerate() {
            let sender = slot / self.per_sender as usize;
            let n = count.load(Ordering::Relaxed);
            if n > 0 && n >= self.members[sender] {
                let _ = hist.record(self.latest_us[slot].load(Ordering::Relaxed).max(1));
                complete += 1;
            }
        }
        (hist, complete)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_counts_once_every_member_has_it_at_its_slowest() {
        let last = LastDelivery::new(vec![3, 2], 4).unwrap();
        for lat in [100, 900, 300] {
            last.record(0, 1, lat);
        }
        last.record(0, 2, 50); // one of three: incomplete
        last.record(1, 0, 10);
        last.record(1, 0, 20);
        last.record(1, 9, 5); // beyond the slots: ignored
        last.record(7, 0, 5); // not a sender: ignored
        let (hist, complete) = last.histogram();
        assert_eq!(complete, 2);
        assert_eq!(hist.len(), 2);
        assert_eq!(hist.max(), 900);
        assert_eq!(hist.min(), 20);
    }

    #[test]
    fn too_many_slots_are_refused() {
        assert!(LastDelivery::new(vec![1; 10], MAX_SLOTS / 10 + 1).is_err());
    }
}
