//! Fallback plans: the ordered attempts and the `next(outcome)` state machine.

mod outcome;

pub use outcome::*;
