//! `coordinator_events` paging: which events of the timeline one call answers.
//!
//! | `before` | `after` | answer (oldest first, at most `limit`)                 |
//! |----------|---------|--------------------------------------------------------|
//! | -        | -       | the latest events                                      |
//! | n        | -       | the latest events whose `seq` is below n (paging back) |
//! | -        | m       | the oldest events whose `seq` is above m (following)   |
//! | n        | m       | the oldest events between them                         |
//!
//! `seq` numbers one chain's timeline, so a cursor on a coordinator of several chains needs the
//! chain's name; without a cursor the chains' latest events are merged by time, as before paging.

use opc_wire::coordinator::{CoordinatorEvent, DEFAULT_EVENTS_LIMIT, MAX_EVENTS_LIMIT};

/// One call's paging parameters, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct EventsQuery {
    limit: usize,
    before: Option<u64>,
    after: Option<u64>,
}

impl EventsQuery {
    /// The query, or the reason it is refused (for an invalid-params error).
    pub(super) fn new(limit: Option<u64>, before: Option<u64>, after: Option<u64>) -> Result<Self, String> {
        let limit = limit.unwrap_or(DEFAULT_EVENTS_LIMIT);
        if limit > MAX_EVENTS_LIMIT {
            return Err(format!(
                "limit {limit} is above the maximum {MAX_EVENTS_LIMIT}; page with before (the seq of the \
                 oldest event you have) or after (the newest)"
            ));
        }
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(Self { limit, before, after })
    }

    /// Whether the query pages through one chain's timeline.
    pub(super) fn has_cursor(&self) -> bool {
        self.before.is_some() || self.after.is_some()
    }

    /// The answer from `events` (one chain's timeline, or several merged), oldest first.
    pub(super) fn page(&self, mut events: Vec<CoordinatorEvent>) -> Vec<CoordinatorEvent> {
        if self.has_cursor() {
            events.retain(|event| {
                event.seq.is_some_and(|seq| {
                    self.before.is_none_or(|before| seq < before)
                        && self.after.is_none_or(|after| seq > after)
                })
            });
            events.sort_by_key(|event| event.seq);
        } else {
            events.sort_by_key(|event| event.at_unix_ms);
        }
        if self.after.is_some() {
            events.truncate(self.limit);
            return events;
        }
        let skip = events.len().saturating_sub(self.limit);
        events.split_off(skip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opc_wire::EventKind;

    fn timeline(seqs: std::ops::Range<u64>) -> Vec<CoordinatorEvent> {
        seqs.map(|seq| CoordinatorEvent {
            seq: Some(seq),
            at_unix_ms: 1_000 + seq,
            chain: "devnet".into(),
            kind: EventKind::Paused,
            node: None,
            detail: String::new(),
            duration_ms: None,
        })
        .collect()
    }

    fn seqs(events: &[CoordinatorEvent]) -> Vec<u64> {
        events.iter().filter_map(|event| event.seq).collect()
    }

    fn query(limit: u64, before: Option<u64>, after: Option<u64>) -> EventsQuery {
        EventsQuery::new(Some(limit), before, after).expect("valid")
    }

    #[test]
    fn each_row_of_the_paging_table() {
        assert_eq!(seqs(&query(3, None, None).page(timeline(0..10))), [7, 8, 9], "the latest");
        assert_eq!(seqs(&query(3, Some(7), None).page(timeline(0..10))), [4, 5, 6], "paging back");
        assert_eq!(seqs(&query(3, None, Some(2)).page(timeline(0..10))), [3, 4, 5], "following");
        assert_eq!(seqs(&query(3, Some(5), Some(1)).page(timeline(0..10))), [2, 3, 4], "between");
        assert_eq!(seqs(&query(3, None, Some(9)).page(timeline(0..10))), [] as [u64; 0], "nothing newer");
    }

    #[test]
    fn paging_back_from_the_latest_visits_every_event_once() {
        let mut seen = Vec::new();
        let mut before = None;
        loop {
            let page = query(4, before, None).page(timeline(0..10));
            let Some(oldest) = page.first().and_then(|event| event.seq) else { break };
            seen.splice(0..0, seqs(&page));
            before = Some(oldest);
        }
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn an_omitted_limit_is_the_default_and_one_above_the_maximum_is_refused_with_the_way_out() {
        assert_eq!(EventsQuery::new(None, None, None), Ok(query(DEFAULT_EVENTS_LIMIT, None, None)));
        let err = EventsQuery::new(Some(MAX_EVENTS_LIMIT + 1), None, None).expect_err("too many");
        assert!(err.contains("maximum 1000") && err.contains("before"), "{err}");
    }
}
