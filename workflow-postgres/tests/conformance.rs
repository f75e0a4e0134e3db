//! The storage conformance suite against a real PostgreSQL server: one throwaway cluster for
//! this test binary, a fresh database per test.

use workflow_postgres::PgStore;
use workflow_postgres::testing::TestCluster;
use workflow_runtime::testing::conformance::Harness;

/// A fresh database; every open is a new store (new connections) on it.
struct OnPostgres {
    url: String,
}

impl OnPostgres {
    fn new() -> Self {
        Self {
            url: TestCluster::shared().create_database(),
        }
    }
}

impl Harness for OnPostgres {
    type Store = PgStore;

    fn open(&self) -> PgStore {
        PgStore::open(&self.url).expect("the store opens")
    }
}

workflow_runtime::store_conformance!(postgres, OnPostgres::new());
