//! The storage conformance suite, run against every backend this crate ships: the embedded
//! store on a real file, and the same store on a memory disk (what test engines use).

use workflow_runtime::store::{FileStore, MemoryDisk};
use workflow_runtime::testing::conformance::Harness;

/// The embedded store in a file of a temporary directory; reopening opens the same file.
struct OnFile {
    dir: tempfile::TempDir,
}

impl OnFile {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }
}

impl Harness for OnFile {
    type Store = FileStore;

    fn open(&self) -> FileStore {
        FileStore::open(self.dir.path().join("store.db")).expect("the store file opens")
    }
}

/// The embedded store on a memory disk whose bytes outlive each store instance.
#[derive(Default)]
struct OnMemoryDisk(MemoryDisk);

impl Harness for OnMemoryDisk {
    type Store = FileStore;

    fn open(&self) -> FileStore {
        FileStore::open_disk(self.0.clone()).expect("the memory disk opens")
    }
}

workflow_runtime::store_conformance!(file, OnFile::new());
workflow_runtime::store_conformance!(memory_disk, OnMemoryDisk::default());
