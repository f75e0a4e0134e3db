//! A storage layer that loses power: the store file holds only what was synced, plus, at a
//! simulated power cut, whatever part of the unsynced writes the seed decides reached the
//! platter.
//!
//! A process killed with SIGKILL loses nothing the kernel already holds, so a kill never tests
//! the one thing durability is about. This layer keeps every write since the last
//! `sync_data` in memory and writes it to the file only when redb syncs; reads see the
//! unsynced writes, as they would through the page cache. A kill at any moment then loses
//! every unsynced write, which is a power cut of the simplest kind. At its chosen
//! operation, [`PowerLossDisk`] cuts the power itself, harder: a seeded subset of the
//! unsynced writes reaches the file, in a shuffled order, one of them possibly torn (only a
//! prefix of it written, cut at a 512-byte sector), and the process dies with SIGKILL before
//! the operation runs.
//!
//! It also fails the way a device does, from a chosen operation on ([`DiskFaults`]): a full disk
//! refuses every write and resize with `StorageFull` until space returns; a failing device
//! refuses every sync with an I/O error, and loses the writes since the last sync the way Linux
//! does after a failed writeback: each reached the disk or not (the seed decides), and the page
//! cache keeps showing all of them, marked clean, so that no later sync writes them. Clones
//! share the file, the page cache and the faults, so the store can open the disk again.
//!
//! What it does not model: the file system's own metadata (the store file is created, and
//! linked into place, before this layer is used), and a disk that lies about `fsync` unless
//! told to ([`PowerLossDisk::lying_about_sync`], which the torture uses to prove its check is
//! not blind). It is a test instrument, used by the crash torture's power-loss mode through
//! [`FileStore::open_power_loss`](super::FileStore::open_power_loss).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The page size of the simulated page cache.
const PAGE: u64 = 4096;

use redb::StorageBackend;

/// How the unsynced writes fare at a power cut.
///
/// # Examples
///
/// ```
/// use workflow_runtime::store::{CutMode, CutReport};
/// fn describe(report: &CutReport) -> String {
///     match report.mode {
///         CutMode::LoseAll => "every unsynced write was lost".to_owned(),
///         CutMode::Prefix => format!("{} of {} unsynced writes survived, in order", report.applied, report.pending),
///         CutMode::Shuffled => format!("{} of {} unsynced writes survived, reordered", report.applied, report.pending),
///     }
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutMode {
    /// None of them reaches the file.
    LoseAll,
    /// The oldest ones, in order, up to a point.
    Prefix,
    /// A random subset, in a random order (the disk reorders).
    Shuffled,
}

/// What a power cut wrote; printed to the worker's log for the reproduction of a violation.
///
/// # Examples
///
/// ```no_run
/// use workflow_runtime::store::{FileStore, PowerLossDisk};
/// # fn demo(path: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
/// // The power goes at the 40th store operation; the worker logs what reached the file and dies.
/// let disk = PowerLossDisk::open(path, 7, 40, |report| {
///     eprintln!("power cut: {report:?}");
///     std::process::abort();
/// })?;
/// let store = FileStore::open_power_loss(disk)?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CutReport {
    /// How the unsynced writes fared.
    pub mode: CutMode,
    /// Unsynced writes when the power went.
    pub pending: usize,
    /// How many of them reached the file (a torn one counts).
    pub applied: usize,
    /// Bytes of the torn write that reached the file, out of its length.
    pub torn: Option<(usize, usize)>,
}

struct State {
    file: File,
    /// The length the file has, synced writes and set_len calls included.
    len: u64,
    /// Writes since the last sync, oldest first.
    pending: Vec<(u64, Vec<u8>)>,
    /// Pages a failed sync lost, by offset, as the page cache shows them: reads still see them
    /// (the cache marked them clean), the disk may not hold them, and no sync writes them.
    /// Patched by later synced writes. Whole pages, so that repeated failures do not pile up.
    stale: BTreeMap<u64, Vec<u8>>,
    rng: Rng,
}

/// A fault of the device, see [`DiskFaults`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskFault {
    /// No space left: every write and resize fails with `StorageFull`; syncs succeed.
    NoSpace,
    /// Every sync fails with an I/O error and loses the writes it was to make durable (see the
    /// module's documentation).
    FailingSync,
}

/// The fault switch of a [`PowerLossDisk`], shared by its clones.
#[derive(Debug, Clone, Default)]
pub struct DiskFaults(Arc<Faults>);

#[derive(Debug, Default)]
struct Faults {
    /// The fault and the operation (counted from 1) it starts at.
    armed: Mutex<Option<(DiskFault, u64)>>,
    ops: AtomicU64,
    failed: AtomicU64,
}

impl DiskFaults {
    /// Starts `fault` now.
    pub fn start(&self, fault: DiskFault) {
        self.start_after(fault, 0);
    }

    /// Starts `fault` at the `ops`-th write, resize or sync from now (at the next one for 0 or
    /// 1).
    pub fn start_after(&self, fault: DiskFault, ops: u64) {
        let at = self.0.ops.load(Ordering::SeqCst) + ops.max(1);
        *self.armed() = Some((fault, at));
    }

    /// Ends the fault: space returns, the device heals.
    pub fn clear(&self) {
        *self.armed() = None;
    }

    /// The fault in force now, if any (not one scheduled for later).
    pub fn active(&self) -> Option<DiskFault> {
        let now = self.0.ops.load(Ordering::SeqCst) + 1;
        self.armed().filter(|(_, at)| *at <= now).map(|(f, _)| f)
    }

    /// Whether a fault is in force or scheduled.
    pub fn armed_fault(&self) -> Option<DiskFault> {
        self.armed().map(|(f, _)| f)
    }

    /// How many operations failed because of a fault.
    pub fn failed_operations(&self) -> u64 {
        self.0.failed.load(Ordering::SeqCst)
    }

    fn armed(&self) -> std::sync::MutexGuard<'_, Option<(DiskFault, u64)>> {
        self.0
            .armed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts an operation; the fault in force for it, if any.
    fn tick(&self) -> Option<DiskFault> {
        let n = self.0.ops.fetch_add(1, Ordering::SeqCst) + 1;
        self.armed().filter(|(_, at)| *at <= n).map(|(f, _)| f)
    }

    fn fail(&self, fault: DiskFault) -> io::Error {
        self.0.failed.fetch_add(1, Ordering::SeqCst);
        match fault {
            DiskFault::NoSpace => io::Error::new(
                io::ErrorKind::StorageFull,
                "no space left on device (simulated)",
            ),
            DiskFault::FailingSync => {
                io::Error::other("input/output error during sync (simulated)")
            }
        }
    }
}

/// A redb storage backend over a file that loses its unsynced writes at a power cut, and can
/// fill up or fail its syncs ([`PowerLossDisk::faults`]). Clones share everything.
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
/// use workflow_runtime::store::{FileStore, PowerLossDisk};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("torture.db");
/// drop(FileStore::open(&path)?); // the file must exist
/// // `cut_at` 0: the power never goes; writes are held until each sync, as a disk cache would.
/// let disk = PowerLossDisk::open(&path, 1, 0, |_| unreachable!("no cut"))?;
/// let engine = Engine::builder().register(approval).open_store(FileStore::open_power_loss(disk)?).await?;
/// engine.start(approval, "r-1", 10).await?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
#[derive(Clone)]
pub struct PowerLossDisk(Arc<Disk>);

struct Disk {
    state: Mutex<State>,
    /// Operations (write, set_len, sync) so far.
    ops: AtomicU64,
    /// Cut the power just before this operation (counting from 1); 0 never.
    cut_at: u64,
    /// Called after the cut has written what reaches the file: it must not return (the
    /// worker kills its own process there).
    on_cut: Box<dyn Fn(&CutReport) + Send + Sync>,
    /// A disk that lies: `sync_data` returns at once and the writes stay unsynced until every
    /// eighth sync. Only for proving that the check sees lost acknowledged data.
    lying_sync: bool,
    syncs: AtomicU64,
    faults: DiskFaults,
}

impl std::fmt::Debug for PowerLossDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PowerLossDisk")
            .field("ops", &self.0.ops.load(Ordering::Relaxed))
            .field("cut_at", &self.0.cut_at)
            .finish_non_exhaustive()
    }
}

impl PowerLossDisk {
    /// Opens `path` (which must exist) through the layer. The power goes just before the
    /// `cut_at`-th write, set_len or sync (never when 0); `seed` decides what of the unsynced
    /// writes survives; `on_cut` runs then and must end the process.
    ///
    /// # Errors
    /// If the file cannot be opened.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use workflow_runtime::store::{FileStore, PowerLossDisk};
    /// # fn demo(path: &std::path::Path, seed: u64, cut_at: u64) -> Result<(), Box<dyn std::error::Error>> {
    /// let disk = PowerLossDisk::open(path, seed, cut_at, |report| {
    ///     eprintln!("{report:?}");
    ///     // Must not return: the process dies with whatever reached the file.
    ///     std::process::abort();
    /// })?;
    /// let store = FileStore::open_power_loss(disk)?;
    /// # Ok(()) }
    /// ```
    pub fn open(
        path: &Path,
        seed: u64,
        cut_at: u64,
        on_cut: impl Fn(&CutReport) + Send + Sync + 'static,
    ) -> io::Result<PowerLossDisk> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let len = file.metadata()?.len();
        Ok(PowerLossDisk(Arc::new(Disk {
            state: Mutex::new(State {
                file,
                len,
                pending: Vec::new(),
                stale: BTreeMap::new(),
                // Each life has its own cut point, hence its own draw.
                rng: Rng::new(seed ^ 0x0090_77E4 ^ cut_at.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            }),
            ops: AtomicU64::new(0),
            cut_at,
            on_cut: Box::new(on_cut),
            lying_sync: false,
            syncs: AtomicU64::new(0),
            faults: DiskFaults::default(),
        })))
    }

    /// Makes the disk lie about `sync_data` (see the field); the torture's check must then
    /// report acknowledged work as lost. Call it before cloning the disk.
    ///
    /// # Panics
    /// If the disk has been cloned already.
    ///
    /// # Examples
    ///
    /// ```
    /// use workflow_runtime::store::{FileStore, PowerLossDisk};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("liar.db");
    /// drop(FileStore::open(&path)?);
    /// // For proving that a check notices lost acknowledged writes.
    /// let disk = PowerLossDisk::open(&path, 1, 0, |_| unreachable!("no cut"))?.lying_about_sync();
    /// let store = FileStore::open_power_loss(disk)?;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn lying_about_sync(mut self) -> Self {
        Arc::get_mut(&mut self.0)
            .expect("lying_about_sync is set before the disk is shared")
            .lying_sync = true;
        self
    }

    /// The switch that makes this disk (and its clones) full, or fail its syncs.
    pub fn faults(&self) -> DiskFaults {
        self.0.faults.clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts an operation, and cuts the power if this is the chosen one; the device fault in
    /// force for it, if any.
    fn operation(&self, state: &mut State) -> io::Result<Option<DiskFault>> {
        let n = self.0.ops.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.0.cut_at {
            let report = cut(state)?;
            (self.0.on_cut)(&report);
        }
        Ok(self.0.faults.tick())
    }
}

/// Overlays `writes` on `out`, which holds the bytes from `offset` on.
fn overlay(out: &mut [u8], offset: u64, writes: &[(u64, Vec<u8>)]) {
    let end = offset + out.len() as u64;
    for (at, data) in writes {
        let w_end = at + data.len() as u64;
        if *at >= end || w_end <= offset {
            continue;
        }
        let from = offset.max(*at);
        let to = end.min(w_end);
        out[(from - offset) as usize..(to - offset) as usize]
            .copy_from_slice(&data[(from - at) as usize..(to - at) as usize]);
    }
}

/// Overlays the cached pages on `out`, which holds the bytes from `offset` on.
fn overlay_pages(out: &mut [u8], offset: u64, pages: &BTreeMap<u64, Vec<u8>>) {
    let end = offset + out.len() as u64;
    for (at, data) in pages.range(offset - offset % PAGE..end) {
        let w_end = at + data.len() as u64;
        if w_end <= offset {
            continue;
        }
        let from = offset.max(*at);
        let to = end.min(w_end);
        out[(from - offset) as usize..(to - offset) as usize]
            .copy_from_slice(&data[(from - at) as usize..(to - at) as usize]);
    }
}

/// What a read at `offset` sees: the synced bytes, then the stale pages, then the unsynced
/// writes, oldest first, as the page cache would show them.
fn view(state: &State, offset: u64, out: &mut [u8]) -> io::Result<()> {
    let end = offset + out.len() as u64;
    if end > state.len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("read of {end} bytes past the end ({})", state.len),
        ));
    }
    // Bytes past the file's end but inside `len` were made by an unsynced set_len and read as
    // zeros.
    out.fill(0);
    // A shrink not yet synced hides what lies past the logical end.
    let file_len = state.file.metadata()?.len().min(state.len);
    if offset < file_len {
        let n = (file_len - offset).min(out.len() as u64) as usize;
        state.file.read_exact_at(&mut out[..n], offset)?;
    }
    overlay_pages(out, offset, &state.stale);
    overlay(out, offset, &state.pending);
    Ok(())
}

/// Truncates writes to `len`, dropping those past it.
fn truncate(writes: &mut Vec<(u64, Vec<u8>)>, len: u64) {
    writes.retain_mut(|(at, data)| {
        if *at >= len {
            return false;
        }
        data.truncate((len - *at).min(data.len() as u64) as usize);
        true
    });
}

/// Writes the part of the unsynced writes that survives the cut, and makes it durable, so the
/// next life finds exactly that.
fn cut(state: &mut State) -> io::Result<CutReport> {
    // The page cache goes with the power.
    state.stale.clear();
    let pending = std::mem::take(&mut state.pending);
    let total = pending.len();
    let rng = &mut state.rng;
    let mode = match rng.range(0, 2) {
        0 => CutMode::LoseAll,
        1 => CutMode::Prefix,
        _ => CutMode::Shuffled,
    };
    let mut chosen: Vec<(u64, Vec<u8>)> = match mode {
        CutMode::LoseAll => Vec::new(),
        CutMode::Prefix => {
            let keep = rng.range(0, total as u64) as usize;
            pending.into_iter().take(keep).collect()
        }
        CutMode::Shuffled => {
            let mut kept: Vec<_> = pending.into_iter().filter(|_| rng.chance(1, 2)).collect();
            for i in (1..kept.len()).rev() {
                let j = rng.range(0, i as u64) as usize;
                kept.swap(i, j);
            }
            kept
        }
    };
    let mut torn = None;
    if let Some(last) = chosen.last_mut()
        && last.1.len() > 512
        && rng.chance(1, 2)
    {
        let sectors = (last.1.len() / 512) as u64;
        let keep = rng.range(1, sectors.max(1)) as usize * 512;
        let keep = keep.min(last.1.len() - 1);
        torn = Some((keep, last.1.len()));
        last.1.truncate(keep);
    }
    let applied = chosen.len();
    for (offset, data) in &chosen {
        state.file.write_all_at(data, *offset)?;
    }
    state.file.sync_data()?;
    Ok(CutReport {
        mode,
        pending: total,
        applied,
        torn,
    })
}

impl StorageBackend for PowerLossDisk {
    fn len(&self) -> Result<u64, io::Error> {
        Ok(self.state().len)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        view(&self.state(), offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        let mut state = self.state();
        if let Some(DiskFault::NoSpace) = self.operation(&mut state)? {
            return Err(self.0.faults.fail(DiskFault::NoSpace));
        }
        // Like a write, a new length reaches the file at the next sync: a shrink drops the
        // pending writes past the end, a growth reads as zeros until written.
        if len < state.len {
            truncate(&mut state.pending, len);
            state.stale.retain(|at, _| *at < len);
            if let Some((at, page)) = state.stale.iter_mut().next_back() {
                page.truncate((len - at).min(page.len() as u64) as usize);
            }
        }
        state.len = len;
        Ok(())
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        let mut state = self.state();
        if let Some(DiskFault::FailingSync) = self.operation(&mut state)? {
            // All of them stay in the page cache, clean: the pages they touched, as shown now.
            let touched: BTreeSet<u64> = state
                .pending
                .iter()
                .flat_map(|(at, data)| {
                    let end = at + data.len() as u64;
                    (at - at % PAGE..end).step_by(PAGE as usize)
                })
                .collect();
            let mut cached = Vec::with_capacity(touched.len());
            for page in touched.into_iter().filter(|p| *p < state.len) {
                let mut bytes = vec![0; (state.len - page).min(PAGE) as usize];
                view(&state, page, &mut bytes)?;
                cached.push((page, bytes));
            }
            // Each write reached the disk or not.
            let pending = std::mem::take(&mut state.pending);
            for (offset, data) in &pending {
                if state.rng.chance(1, 2) {
                    state.file.write_all_at(data, *offset)?;
                }
            }
            state.stale.extend(cached);
            return Err(self.0.faults.fail(DiskFault::FailingSync));
        }
        if self.0.lying_sync && self.0.syncs.fetch_add(1, Ordering::SeqCst) % 8 != 7 {
            return Ok(());
        }
        let pending = std::mem::take(&mut state.pending);
        for (offset, data) in &pending {
            state.file.write_all_at(data, *offset)?;
        }
        // What is now on the disk is also what the page cache shows.
        for (at, data) in &mut state.stale {
            overlay(data, *at, &pending);
        }
        // A stale page that the synced writes made whole on the disk is no longer stale.
        let file = &state.file;
        let mut on_disk = Vec::new();
        for (w_at, w) in &pending {
            let w_end = w_at + w.len() as u64;
            for (at, data) in state.stale.range(w_at - w_at % PAGE..w_end) {
                let mut disk = vec![0; data.len()];
                if file.read_exact_at(&mut disk, *at).is_ok() && disk == *data {
                    on_disk.push(*at);
                }
            }
        }
        for at in on_disk {
            state.stale.remove(&at);
        }
        let len = state.len;
        if state.file.metadata()?.len() != len {
            state.file.set_len(len)?;
        }
        state.file.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        let mut state = self.state();
        if let Some(DiskFault::NoSpace) = self.operation(&mut state)? {
            return Err(self.0.faults.fail(DiskFault::NoSpace));
        }
        let end = offset + data.len() as u64;
        if end > state.len {
            state.len = end;
        }
        state.pending.push((offset, data.to_vec()));
        Ok(())
    }
}

/// SplitMix64: enough randomness to pick what survives a cut, reproducibly from a seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// True with probability `num / den`.
    fn chance(&mut self, num: u64, den: u64) -> bool {
        self.next_u64() % den < num
    }
}
