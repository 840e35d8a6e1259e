//! Acceptance in a lane of its own.
//!
//! A webhook's `202` waits for its event's insert to be committed. In one
//! queue that insert waited behind the step records of every execution in
//! flight, committed in the same group. Here the writer's jobs come in two
//! lanes: when both hold jobs, the acceptances are committed first, in a
//! group of their own, and the steps in the very next group (with whatever
//! acceptances arrived meanwhile), so neither lane can starve the other.

use std::collections::VecDeque;
use std::sync::mpsc;

/// Which lane a job waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lane {
    /// Inserting an accepted event (webhook, schedule tick, API start).
    Acceptance,
    /// Everything else: step records, ends, claims, data.
    Steps,
}

/// The writer's view of its queue: the next group to commit.
pub(super) struct Lanes<T> {
    queue: mpsc::Receiver<(Lane, T)>,
    acceptance: VecDeque<T>,
    steps: VecDeque<T>,
    /// The last group held acceptances only: the steps go next.
    steps_owed: bool,
    max_batch: usize,
}

impl<T> Lanes<T> {
    pub(super) fn new(queue: mpsc::Receiver<(Lane, T)>, max_batch: usize) -> Lanes<T> {
        Lanes {
            queue,
            acceptance: VecDeque::new(),
            steps: VecDeque::new(),
            steps_owed: false,
            max_batch: max_batch.max(1),
        }
    }

    fn push(&mut self, (lane, job): (Lane, T)) {
        match lane {
            Lane::Acceptance => self.acceptance.push_back(job),
            Lane::Steps => self.steps.push_back(job),
        }
    }

    /// The next group to commit together, waiting for one job when none is
    /// waiting; `None` once every sender is gone and nothing is left.
    pub(super) fn next_batch(&mut self) -> Option<Vec<T>> {
        if self.acceptance.is_empty() && self.steps.is_empty() {
            let first = self.queue.recv().ok()?;
            self.push(first);
        }
        while self.acceptance.len() + self.steps.len() < 2 * self.max_batch {
            match self.queue.try_recv() {
                Ok(queued) => self.push(queued),
                Err(_) => break,
            }
        }
        let take = |from: &mut VecDeque<T>, n: usize| -> Vec<T> {
            let n = n.min(from.len());
            from.drain(..n).collect()
        };
        if !self.acceptance.is_empty() && !self.steps.is_empty() && !self.steps_owed {
            self.steps_owed = true;
            return Some(take(&mut self.acceptance, self.max_batch));
        }
        self.steps_owed = false;
        let mut batch = take(&mut self.acceptance, self.max_batch);
        let room = self.max_batch - batch.len();
        batch.extend(take(&mut self.steps, room));
        Some(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lanes(jobs: &[(Lane, u32)]) -> Lanes<u32> {
        let (tx, rx) = mpsc::channel();
        for job in jobs {
            tx.send(*job).unwrap();
        }
        Lanes::new(rx, 4)
    }

    use Lane::{Acceptance as A, Steps as S};

    #[test]
    fn acceptances_go_first_alone_and_the_steps_right_after() {
        let mut l = lanes(&[(S, 1), (S, 2), (A, 10), (S, 3), (A, 11)]);
        assert_eq!(l.next_batch(), Some(vec![10, 11]));
        assert_eq!(l.next_batch(), Some(vec![1, 2, 3]));
    }

    #[test]
    fn one_lane_alone_is_committed_as_before() {
        let mut l = lanes(&[(S, 1), (S, 2)]);
        assert_eq!(l.next_batch(), Some(vec![1, 2]));
        let mut l = lanes(&[(A, 1), (A, 2)]);
        assert_eq!(l.next_batch(), Some(vec![1, 2]));
    }

    #[test]
    fn steps_are_never_starved_by_a_flood_of_acceptances() {
        let (tx, rx) = mpsc::channel();
        let mut l = Lanes::new(rx, 4);
        tx.send((S, 0)).unwrap();
        let mut steps_done = false;
        for round in 1..=3u32 {
            tx.send((A, round * 100)).unwrap();
            tx.send((A, round * 100 + 1)).unwrap();
            let batch = l.next_batch().unwrap();
            steps_done |= batch.contains(&0);
        }
        assert!(steps_done, "the step job went within three groups");
    }

    #[test]
    fn groups_are_bounded_and_the_end_is_seen() {
        let jobs: Vec<(Lane, u32)> = (0..10).map(|n| (S, n)).collect();
        let mut l = lanes(&jobs);
        assert_eq!(l.next_batch().unwrap().len(), 4);
        assert_eq!(l.next_batch().unwrap().len(), 4);
        assert_eq!(l.next_batch().unwrap(), vec![8, 9]);
        assert_eq!(l.next_batch(), None, "every sender gone, nothing left");
    }
}
