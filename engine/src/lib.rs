//! The Dialcast engine.
