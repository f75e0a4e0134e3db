//! The store refuses a server that could lose acknowledged commits in a power cut. This binary
//! has a cluster of its own: the test changes server-wide settings.

use workflow_postgres::PgStore;
use workflow_postgres::testing::TestCluster;
use workflow_runtime::OpenError;

/// `fsync` or `full_page_writes` off (server-wide) makes the open fail with
/// [`OpenError::NotDurable`] naming the setting; `synchronous_commit` off as a server, database
/// or role default does not, because the store sets it on its own connections.
#[test]
fn an_unsafe_server_is_refused() {
    let cluster = TestCluster::start().expect("a cluster");
    let url = cluster.create_database();
    drop(PgStore::open(&url).expect("a durable server is accepted"));

    for setting in ["fsync", "full_page_writes"] {
        // `ALTER SYSTEM` refuses to share a (implicit) transaction with another statement.
        cluster
            .execute(&format!("ALTER SYSTEM SET {setting} = off"))
            .expect("turn the setting off");
        reload(&cluster);
        // A reload is signalled, not awaited: poll until the server reports it.
        wait_for(&cluster, setting, "off");
        match PgStore::open(&url) {
            Err(OpenError::NotDurable {
                setting: named,
                value,
                ..
            }) => assert_eq!((named.as_str(), value.as_str()), (setting, "off")),
            other => panic!("a server with {setting} = off was not refused: {other:?}"),
        }
        cluster
            .execute(&format!("ALTER SYSTEM RESET {setting}"))
            .expect("turn the setting back on");
        reload(&cluster);
        wait_for(&cluster, setting, "on");
        drop(PgStore::open(&url).expect("accepted again"));
    }

    let db = url.rsplit_once('/').expect("a database name").1;
    cluster
        .execute("ALTER SYSTEM SET synchronous_commit = off")
        .expect("turn synchronous_commit off");
    cluster
        .execute(&format!("ALTER DATABASE {db} SET synchronous_commit = off"))
        .expect("turn synchronous_commit off for the database");
    reload(&cluster);
    wait_for(&cluster, "synchronous_commit", "off");
    drop(PgStore::open(&url).expect("the store sets synchronous_commit on its connections"));
}

fn reload(cluster: &TestCluster) {
    cluster
        .execute("SELECT pg_reload_conf()")
        .expect("reload the configuration");
}

/// Waits until a new session sees `setting` at `value` (a reload reaches backends shortly
/// after `pg_reload_conf` returns).
fn wait_for(cluster: &TestCluster, setting: &str, value: &str) {
    for _ in 0..200 {
        let check = format!(
            "DO $$ BEGIN IF current_setting('{setting}') <> '{value}' THEN
                 RAISE EXCEPTION 'not yet'; END IF; END $$"
        );
        if cluster.execute(&check).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("the server never reported {setting} = {value}");
}
