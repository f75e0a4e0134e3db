//! Code shared by the examples: the refund-review domain (tickets, customers, the drafting
//! agent, a stand-in payment provider with its own durable ledger) and its workflow, and the
//! order saga (reserve, charge, ship; undo in reverse order on a permanent failure).

pub mod order_review;
pub mod refund;
pub mod saga;
