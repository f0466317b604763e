//! Provider-independent parts of talking to a cloud: keys, errors, throttling, retries,
//! idempotency keys.

pub mod error;
pub mod idempotency;
pub mod retry;
pub mod secret;
pub mod throttle;
pub mod transport;

pub use error::{CloudError, ErrorClass};
pub use secret::ApiKey;
