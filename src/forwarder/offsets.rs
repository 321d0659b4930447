//! The commit rule: a partition's offset moves only over messages that are finished, meaning
//! acknowledged by Segment or written to the dead-letter topic, with no gap.

use std::collections::VecDeque;
use std::time::Instant;

/// The messages of one partition that were received and are not yet behind the commit position,
/// in offset order.
#[derive(Debug, Default)]
pub struct Watermark {
    outstanding: VecDeque<Entry>,
    outstanding_bytes: usize,
}

#[derive(Debug)]
struct Entry {
    offset: i64,
    bytes: usize,
    finished: bool,
    received: Instant,
}

impl Watermark {
    /// Records a received message. Offsets arrive in increasing order within a partition.
    pub fn track(&mut self, offset: i64, bytes: usize) {
        self.outstanding.push_back(Entry {
            offset,
            bytes,
            finished: false,
            received: Instant::now(),
        });
        self.outstanding_bytes += bytes;
    }

    /// Marks a message finished. Returns the new commit position (the offset after the last
    /// message of the finished prefix) when it moved.
    pub fn finish(&mut self, offset: i64) -> Option<i64> {
        let index = self
            .outstanding
            .binary_search_by_key(&offset, |entry| entry.offset)
            .ok()?;
        self.outstanding[index].finished = true;

        let mut position = None;
        while self.outstanding.front().is_some_and(|entry| entry.finished) {
            if let Some(entry) = self.outstanding.pop_front() {
                self.outstanding_bytes -= entry.bytes;
                position = Some(entry.offset + 1);
            }
        }
        position
    }

    /// When the oldest message not yet behind the commit position arrived.
    pub fn oldest(&self) -> Option<Instant> {
        self.outstanding.front().map(|entry| entry.received)
    }

    /// Bytes of received messages not yet behind the commit position.
    pub fn outstanding_bytes(&self) -> usize {
        self.outstanding_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_waits_for_earliest_unfinished() {
        let mut watermark = Watermark::default();
        for offset in [10, 11, 12] {
            watermark.track(offset, 100);
        }
        assert_eq!(watermark.finish(11), None);
        assert_eq!(watermark.finish(12), None);
        assert_eq!(watermark.finish(10), Some(13));
        assert_eq!(watermark.outstanding_bytes(), 0);
    }

    #[test]
    fn position_moves_over_finished_prefix_only() {
        let mut watermark = Watermark::default();
        for offset in [0, 1, 5, 6] {
            watermark.track(offset, 10);
        }
        assert_eq!(watermark.finish(0), Some(1));
        assert_eq!(watermark.finish(5), None);
        assert_eq!(watermark.outstanding_bytes(), 30);
        assert_eq!(watermark.finish(1), Some(6));
        assert_eq!(watermark.outstanding_bytes(), 10);
    }

    #[test]
    fn unknown_offset_ignored() {
        let mut watermark = Watermark::default();
        watermark.track(3, 1);
        assert_eq!(watermark.finish(2), None);
        assert_eq!(watermark.finish(3), Some(4));
        assert_eq!(watermark.finish(3), None);
    }
}
