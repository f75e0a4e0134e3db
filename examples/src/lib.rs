//! Code shared by the examples: the refund-review domain (tickets, customers, the drafting
//! agent, a stand-in payment provider with its own durable ledger) and its workflow.

pub mod refund;
