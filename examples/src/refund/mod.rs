//! The refund-review scenario: an AI support agent drafts a refund, a human approves, rejects
//! or requests changes, and the refund is issued exactly once.

pub mod agent;
pub mod api;
pub mod auth;
pub mod client;
pub mod clock;
pub mod domain;
pub mod fault;
pub mod keys;
pub mod ledger;
pub mod llm;
pub mod server;
mod services;
pub mod tickets;
pub mod worker;
mod workflow;

pub use services::Services;
pub use workflow::{
    draft_refund_recommendation, issue_refund_once, load_customer, load_customer_for_ticket,
    load_ticket, refund_key, refund_review, refund_review_v1,
};
