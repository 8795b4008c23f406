//! Messages other than calls: what the engine queues for records to be sent
//! by the messaging adapters. Today the e-mail of records imported with
//! `SERVICES_EMAIL=Y` ([`email`]); the SMS a script's `sms` step queues is
//! written by the call itself (`campaign::call`).

pub mod email;
