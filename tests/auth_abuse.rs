//! Abuse of authentication (issue G), against the release binary over real
//! sockets on loopback: a flood of bad logins stays within a constant memory
//! while signed-in users are served; failed logins cannot lock a user out
//! of other addresses and back off more each time; a registry that had
//! users stays closed until the operator opens it; a user added while
//! serving applies to the very next request. Client addresses 127.0.0.2-9
//! are made by binding the client socket before connecting. Every loop has
//! a deadline and every server is killed on drop.

#[path = "auth_abuse/closed.rs"]
mod closed;
#[path = "auth_abuse/flood.rs"]
mod flood;
#[path = "auth_abuse/lockout.rs"]
mod lockout;
#[path = "auth_abuse/support.rs"]
mod support;
