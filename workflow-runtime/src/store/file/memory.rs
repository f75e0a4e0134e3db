//! A redb backend in memory whose bytes outlive the database using it, so a test engine can be
//! closed and opened again on the same store, as a restarted process would; its writes can be
//! made to fail, like a full disk.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

/// Shared in-memory storage for a [`FileStore`](super::FileStore) (see
/// [`FileStore::open_disk`](super::FileStore::open_disk)); clones share the bytes and the fault
/// switch.
///
/// # Examples
///
/// ```
/// # use workflow_runtime::prelude::*;
/// # #[workflow]
/// # async fn approval(ctx: &mut WorkflowContext, amount: u64) -> Result<bool, WorkflowError> {
/// #     let meta = json!({ "amount": amount });
/// #     Ok(ctx.wait_for_signal::<bool>("approve", Duration::from_secs(60), meta).await?)
/// # }
/// # fn main() {
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// use workflow_runtime::store::{FileStore, MemoryDisk};
/// let disk = MemoryDisk::new();
/// let engine = Engine::builder().register(approval).open_store(FileStore::open_disk(disk.clone())?).await?;
/// engine.start(approval, "r-1", 10).await?;
/// engine.shutdown().await;
/// // A "restart" on the same bytes: the run is still there.
/// let engine = Engine::builder().register(approval).open_store(FileStore::open_disk(disk)?).await?;
/// assert_eq!(engine.pending()?.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryDisk {
    bytes: Arc<RwLock<Vec<u8>>>,
    failing: Arc<AtomicBool>,
}

impl MemoryDisk {
    /// An empty disk.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::store::{FileStore, MemoryDisk};
    /// let store = FileStore::open_disk(MemoryDisk::new()).expect("an empty disk takes a new store");
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the stored bytes contain `needle` anywhere (live rows, free pages, the
    /// header): what a test that plants a secret looks for.
    pub fn contains(&self, needle: &[u8]) -> bool {
        !needle.is_empty() && self.bytes().windows(needle.len()).any(|w| w == needle)
    }

    /// While `fail` is set, every write, resize and sync fails as a full disk does; reads go on.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_runtime::prelude::*;
    /// # #[workflow]
    /// # async fn approval(ctx: &mut WorkflowContext, amount: u64) -> Result<bool, WorkflowError> {
    /// #     let meta = json!({ "amount": amount });
    /// #     Ok(ctx.wait_for_signal::<bool>("approve", Duration::from_secs(60), meta).await?)
    /// # }
    /// # fn main() {
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// use workflow_runtime::StartError;
    /// use workflow_runtime::store::{FileStore, MemoryDisk};
    /// let disk = MemoryDisk::new();
    /// let engine = Engine::builder().register(approval).open_store(FileStore::open_disk(disk.clone())?).await?;
    /// disk.fail_writes(true);
    /// match engine.start(approval, "r-1", 10).await {
    ///     Err(StartError::Storage(e)) => assert_eq!(e.io_kind(), Some(std::io::ErrorKind::StorageFull)),
    ///     other => panic!("{other:?}"),
    /// }
    /// disk.fail_writes(false);
    /// // Nothing of the refused start was kept.
    /// assert!(matches!(engine.status("r-1"), Err(EngineError::UnknownRun { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// # }
    /// ```
    pub fn fail_writes(&self, fail: bool) {
        self.failing.store(fail, Ordering::SeqCst);
    }

    fn check(&self) -> io::Result<()> {
        if self.failing.load(Ordering::SeqCst) {
            Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "no space left on device (simulated)",
            ))
        } else {
            Ok(())
        }
    }

    fn bytes(&self) -> std::sync::RwLockReadGuard<'_, Vec<u8>> {
        self.bytes
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn bytes_mut(&self) -> std::sync::RwLockWriteGuard<'_, Vec<u8>> {
        self.bytes
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn range(offset: u64, len: usize, size: usize) -> io::Result<std::ops::Range<usize>> {
    let start = usize::try_from(offset).map_err(io::Error::other)?;
    let end = start.checked_add(len).filter(|end| *end <= size);
    end.map(|end| start..end).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "read past the end of the in-memory store",
        )
    })
}

impl redb::StorageBackend for MemoryDisk {
    fn len(&self) -> io::Result<u64> {
        Ok(self.bytes().len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let bytes = self.bytes();
        let r = range(offset, out.len(), bytes.len())?;
        out.copy_from_slice(&bytes[r]);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.check()?;
        let len = usize::try_from(len).map_err(io::Error::other)?;
        self.bytes_mut().resize(len, 0);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.check()
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.check()?;
        let mut bytes = self.bytes_mut();
        let r = range(offset, data.len(), bytes.len())?;
        bytes[r].copy_from_slice(data);
        Ok(())
    }
}
