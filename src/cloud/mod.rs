//! Provider-independent parts of talking to a cloud: keys, errors, throttling, retries,
//! idempotency keys.

pub mod error;
pub mod secret;

pub use error::{CloudError, ErrorClass};
pub use secret::ApiKey;
