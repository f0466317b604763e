//! The engine's contract, once for every provider: a fake adapter and a fake cloud
//! (tests/engine/fake.rs) drive the generic reconciler against a real API server through
//! create (every outcome, and a crash after every step), adoption, disappearance, update,
//! deletion (both policies), management policies, pause, and a panic in one object's reconcile.
//!
//! Each test reconciles by hand, on a fresh read of the object, and asserts the conditions, the
//! engine's annotations, the finalizer and the calls the fake cloud received.

#[path = "common/mod.rs"]
mod common;
#[path = "engine/fake.rs"]
mod fake;
#[path = "engine/harness.rs"]
mod harness;
#[path = "engine/widget.rs"]
mod widget;

#[path = "engine/connection.rs"]
mod connection;
#[path = "engine/create.rs"]
mod create;
#[path = "engine/deletion.rs"]
mod deletion;
#[path = "engine/events.rs"]
mod events;
#[path = "engine/lifecycle.rs"]
mod lifecycle;
#[path = "engine/observe.rs"]
mod observe;
