//! A served admin API over an engine with one workflow, for the HTTP and CLI tests.

#![allow(dead_code)]

use std::net::SocketAddr;

use workflow_admin::AdminConfig;
use workflow_runtime::prelude::*;

pub const TOKEN: &str = "test-token-0123456789abcdef";

#[function]
pub async fn charge(ctx: StepContext, amount: u64) -> Result<String, StepError> {
    if amount == 13 {
        return Err(StepError::permanent("unlucky amount"));
    }
    Ok(format!("{}:{amount}", ctx.idempotency_key()))
}

#[function]
pub async fn refund(receipt: String) -> Result<String, StepError> {
    Ok(format!("refunded {receipt}"))
}

/// Waits for approval, then charges; a cancellation at the wait ends it with nothing charged.
#[workflow]
pub async fn order(ctx: &mut WorkflowContext, amount: u64) -> Result<String, WorkflowError> {
    match ctx
        .wait_for_signal::<bool>(
            "approve",
            Duration::from_secs(3600),
            json!({ "amount": amount }),
        )
        .await
    {
        Ok(_) => {}
        Err(WaitError::Cancelled) => return Err(WorkflowError::new("cancelled before charging")),
        Err(e) => return Err(e.into()),
    }
    let receipt = ctx.step(charge, amount).await?;
    Ok(receipt)
}

/// One child `order` per amount, all awaited: what the admin shows of children.
#[workflow]
pub async fn basket(ctx: &mut WorkflowContext, amounts: Vec<u64>) -> Result<usize, WorkflowError> {
    let orders = ctx.fan_out_children(order, amounts).await;
    Ok(orders.iter().filter(|o| o.is_ok()).count())
}

/// An engine in memory with the admin API served on a free loopback port.
pub struct Served {
    pub engine: Engine,
    pub base: String,
    pub addr: SocketAddr,
}

pub async fn serve() -> Served {
    let engine = Engine::builder()
        .register(order)
        .register(basket)
        .open_in_memory()
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().nest(
        "/admin",
        workflow_admin::router(engine.clone(), AdminConfig::new(TOKEN)),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Served {
        engine,
        base: format!("http://{addr}/admin"),
        addr,
    }
}
