//! webhook: event notifications to receivers an admin configured
//! (`soute webhook add`), in distribution's envelope ([`envelope`]),
//! durable: [`Outbox`] writes each event into SQLite in the transaction of
//! the change it describes (push, tag, delete) or, for events with no write
//! (pull, login-failure), in small batches; [`deliver`] is the one thread
//! that sends them, in order per webhook, with exponential back-off, until
//! the receiver answers 2xx. [`filter`] parses and matches what a webhook
//! subscribes to; [`stats`] counts deliveries for the metrics.
//!
//! The request behind a change reaches the registry's transaction as an
//! [`Origin`], set by `api` around the dispatch of the writes it audits
//! ([`with_origin`], a scoped thread-local: the registry never sees HTTP
//! types, and a change made with no request, from the CLI, has none).
//!
//! It must never send from a request thread, wait on a receiver while a
//! transaction is open, follow a redirect, connect anywhere but a URL an
//! admin configured, or log a secret.

pub mod admin;
pub mod deliver;
pub mod envelope;
pub mod filter;
mod outbox;
pub mod stats;

pub use deliver::Delivery;
pub use filter::EventKind;
pub use outbox::{Outbox, BACKLOG_LIMIT, UNSAVED_LIMIT};

use std::cell::RefCell;

/// The request that causes the changes the current thread makes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// A user, `token:NAME` or `anonymous` (the audit log's actor).
    pub actor: String,
    /// The client's address and port.
    pub addr: String,
    /// The `Host` the client asked for.
    pub host: String,
    pub method: String,
    pub user_agent: String,
    pub request_id: String,
    /// `http://HOST` or `https://HOST`: target URLs start with it.
    pub base_url: String,
}

thread_local! {
    static ORIGIN: RefCell<Option<Origin>> = const { RefCell::new(None) };
}

/// Runs `f` with `origin` as the cause of the events it records; the
/// previous origin is back afterwards, even if `f` panics.
pub fn with_origin<T>(origin: Origin, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Origin>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            ORIGIN.with(|o| *o.borrow_mut() = previous);
        }
    }
    let previous = ORIGIN.with(|o| o.borrow_mut().replace(origin));
    let _restore = Restore(previous);
    f()
}

/// The origin [`with_origin`] set on this thread, if any.
fn current_origin() -> Option<Origin> {
    ORIGIN.with(|o| o.borrow().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scoped() {
        assert_eq!(current_origin(), None);
        let outer = Origin {
            actor: "alice".into(),
            ..Origin::default()
        };
        with_origin(outer.clone(), || {
            assert_eq!(current_origin().as_ref(), Some(&outer));
            let inner = Origin {
                actor: "bob".into(),
                ..Origin::default()
            };
            with_origin(inner, || {
                assert_eq!(current_origin().map(|o| o.actor).as_deref(), Some("bob"))
            });
            assert_eq!(current_origin().as_ref(), Some(&outer));
            let caught = std::panic::catch_unwind(|| with_origin(Origin::default(), || panic!()));
            assert!(caught.is_err());
            assert_eq!(current_origin().as_ref(), Some(&outer));
        });
        assert_eq!(current_origin(), None);
    }
}
