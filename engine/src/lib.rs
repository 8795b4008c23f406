//! The Dialcast engine. For now: the single-call controller behind `dialcast dial`
//! and `dialcast listen`; campaigns, storage and scheduling arrive with their issues.

pub mod single_call;
