//! The subscription to the agent: connected, subscribing, or waiting to retry with capped
//! exponential backoff until a give-up deadline. Pure; time is passed in.

use std::time::Duration;

/// First retry delay after a failed or lost subscription.
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// SUBSCRIBE sent; `included_seq` = the update book's next sequence number at that time
    /// (updates from then on were not in the SUBSCRIBE body).
    Subscribing {
        included_seq: u64,
    },
    Connected,
    /// Waiting to send SUBSCRIBE again.
    Waiting {
        retry_at: Duration,
    },
}

/// The connection to the agent.
#[derive(Debug, Clone)]
pub struct Link {
    state: State,
    backoff: Duration,
    backoff_max: Duration,
    /// When to stop retrying (only meaningful while not connected).
    give_up_at: Duration,
}

impl Link {
    /// A first SUBSCRIBE was just sent; give up at `give_up_at`.
    pub fn subscribing(included_seq: u64, backoff_max: Duration, give_up_at: Duration) -> Self {
        let backoff = INITIAL_BACKOFF.min(backoff_max);
        Link {
            state: State::Subscribing { included_seq },
            backoff,
            backoff_max,
            give_up_at,
        }
    }

    /// Whether SUBSCRIBED arrived on the current stream.
    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// SUBSCRIBED arrived: returns the sequence number from which updates were not part of
    /// the SUBSCRIBE body and must be sent again.
    pub fn on_subscribed(&mut self) -> Option<u64> {
        let resend_from = match self.state {
            State::Subscribing { included_seq } => Some(included_seq),
            _ => None,
        };
        self.state = State::Connected;
        self.backoff = INITIAL_BACKOFF.min(self.backoff_max);
        resend_from
    }

    /// The stream of a connected link broke: retry from `now` until `now + window`.
    pub fn on_lost(&mut self, now: Duration, window: Duration) {
        self.give_up_at = now.saturating_add(window);
        self.on_attempt_failed(now);
    }

    /// A SUBSCRIBE attempt failed (or its stream ended before SUBSCRIBED): back off.
    pub fn on_attempt_failed(&mut self, now: Duration) {
        self.state = State::Waiting {
            retry_at: now.saturating_add(self.backoff),
        };
        self.backoff = self.backoff.saturating_mul(2).min(self.backoff_max);
    }

    /// Whether a new SUBSCRIBE is due.
    pub fn retry_due(&self, now: Duration) -> bool {
        matches!(self.state, State::Waiting { retry_at } if retry_at <= now)
    }

    /// A new SUBSCRIBE was sent.
    pub fn on_retry(&mut self, included_seq: u64) {
        self.state = State::Subscribing { included_seq };
    }

    /// Whether the agent stayed away past the give-up deadline.
    pub fn expired(&self, now: Duration) -> bool {
        !self.is_connected() && now >= self.give_up_at
    }

    /// The next moment this link needs a tick.
    pub fn deadline(&self) -> Option<Duration> {
        match self.state {
            State::Connected => None,
            State::Subscribing { .. } => Some(self.give_up_at),
            State::Waiting { retry_at } => Some(retry_at.min(self.give_up_at)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets_on_subscribed() {
        let mut link = Link::subscribing(0, ms(350), ms(60_000));
        assert_eq!(link.deadline(), Some(ms(60_000)));
        let mut retries = Vec::new();
        let mut now = ms(0);
        for _ in 0..4 {
            link.on_attempt_failed(now);
            let at = link.deadline().unwrap();
            retries.push((at - now).as_millis());
            assert!(!link.retry_due(at - ms(1)) && link.retry_due(at));
            link.on_retry(5);
            now = at;
        }
        assert_eq!(retries, [100, 200, 350, 350]);
        assert_eq!(link.on_subscribed(), Some(5));
        assert!(
            link.is_connected() && link.deadline().is_none() && !link.expired(ms(u64::MAX / 2))
        );
        link.on_lost(ms(1_000), ms(500));
        assert_eq!(link.deadline(), Some(ms(1_100)));
        assert!(!link.expired(ms(1_499)) && link.expired(ms(1_500)));
    }
}
