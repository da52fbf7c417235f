//! One `strata` daemon process: spawned with its output in a log file, its listening
//! address read from its first line, killable (-9), freezable (SIGSTOP/SIGCONT) and
//! restartable with the same arguments.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running daemon.
pub struct Proc {
    pub name: String,
    bin: PathBuf,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

impl Proc {
    /// Spawns `bin args…` and returns once it printed "listening on http://ADDR".
    pub fn spawn(name: &str, bin: &Path, args: Vec<String>, log: PathBuf) -> (Self, String) {
        let mut me = Self {
            name: name.to_string(),
            bin: bin.to_path_buf(),
            args,
            log,
            child: None,
        };
        let addr = me.launch();
        (me, addr)
    }

    fn launch(&mut self) -> String {
        let mut child = Command::new(&self.bin)
            .args(&self.args)
            .env("STRATA_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let log2 = log.try_clone().expect("log file");
        std::thread::spawn(move || copy_lines(stdout, log, Some(tx)));
        std::thread::spawn(move || copy_lines(stderr, log2, None));
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                panic!(
                    "{} did not start listening; log:\n{}",
                    self.name,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                )
            });
        self.child = Some(child);
        addr
    }

    /// The OS process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Sends `signal` and waits (up to a minute) for the process to exit: its exit code.
    pub fn signal_and_wait(&mut self, signal: Signal) -> Option<i32> {
        self.signal(signal);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// SIGKILL, without any chance to clean up (its executors keep running).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP: the process stops answering but keeps its sockets open.
    pub fn freeze(&self) {
        self.signal(Signal::SIGSTOP);
    }

    /// SIGCONT.
    pub fn thaw(&self) {
        self.signal(Signal::SIGCONT);
    }

    fn signal(&self, s: Signal) {
        if let Some(pid) = self.pid().and_then(|p| i32::try_from(p).ok()) {
            let _ = kill(Pid::from_raw(pid), s);
        }
    }

    /// Starts the process again with the same arguments; returns its address.
    pub fn restart(&mut self) -> String {
        self.kill9();
        let _ = writeln!(
            std::fs::OpenOptions::new()
                .append(true)
                .open(&self.log)
                .expect("log"),
            "----- restart -----"
        );
        self.launch()
    }

    /// Prints the log to stderr.
    pub fn dump(&self) {
        eprintln!(
            "===== {} log ({}) =====\n{}",
            self.name,
            self.log.display(),
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
}

impl Proc {
    /// Kills the daemon and everything it started (executors run in their own groups).
    pub fn stop(&mut self) {
        if let Some(pid) = self.pid() {
            self.thaw();
            strata_containerizer::kill_tree(pid);
        }
        self.kill9();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

fn copy_lines(
    from: impl std::io::Read,
    mut to: std::fs::File,
    tx: Option<std::sync::mpsc::Sender<String>>,
) {
    let mut tx = tx;
    for line in BufReader::new(from).lines().map_while(Result::ok) {
        let _ = writeln!(to, "{line}");
        if let Some(addr) = line.split("listening on http://").nth(1) {
            if let Some(t) = tx.take() {
                let _ = t.send(addr.trim().to_string());
            }
        }
    }
}

/// A master process.
pub struct MasterProc {
    pub proc: Proc,
    pub addr: String,
    pub work_dir: PathBuf,
}

impl MasterProc {
    /// Starts `strata master` with its registry in `work_dir`.
    pub async fn start(bin: &Path, work_dir: &Path, port: u16, extra: Vec<String>) -> Self {
        std::fs::create_dir_all(work_dir).expect("work dir");
        let mut args = vec![
            "master".into(),
            "--port".into(),
            port.to_string(),
            "--work_dir".into(),
            work_dir.display().to_string(),
        ];
        args.extend(extra);
        let (proc, addr) = Proc::spawn("master", bin, args, work_dir.join("master.log"));
        Self {
            proc,
            addr,
            work_dir: work_dir.to_path_buf(),
        }
    }

    /// kill -9 and start again on the same port with the same registry.
    pub fn restart(&mut self) {
        let port = self.addr.rsplit(':').next().unwrap_or("0").to_string();
        if let Some(i) = self.proc.args.iter().position(|a| a == "--port") {
            self.proc.args[i + 1] = port;
        }
        self.addr = self.proc.restart();
    }
}

/// An agent process.
pub struct AgentProc {
    pub proc: Proc,
    pub addr: String,
    pub work_dir: PathBuf,
    /// The `--cgroups_root` the fixture chose (removed on drop).
    cgroups_root: Option<String>,
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        self.proc.stop();
        if let Some(root) = &self.cgroups_root {
            remove_cgroups(root);
        }
    }
}

/// Removes `<hierarchy>/<root>` and everything below it in every cgroup hierarchy
/// (v1: one per controller; v2: the unified one), killing what is left inside.
fn remove_cgroups(root: &str) {
    let base = Path::new("/sys/fs/cgroup");
    let mut tops = vec![base.join(root)];
    for entry in std::fs::read_dir(base).into_iter().flatten().flatten() {
        tops.push(entry.path().join(root));
    }
    for top in tops.into_iter().filter(|t| t.is_dir()) {
        sweep_cgroup(&top);
    }
}

fn sweep_cgroup(dir: &Path) {
    for sub in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if sub.path().is_dir() {
            sweep_cgroup(&sub.path());
        }
    }
    for _ in 0..100 {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl AgentProc {
    /// Starts `strata agent --master …` with its sandboxes in `work_dir`.
    pub async fn start(
        bin: &Path,
        master: &str,
        work_dir: &Path,
        port: u16,
        extra: Vec<String>,
    ) -> Self {
        std::fs::create_dir_all(work_dir).expect("work dir");
        let mut args = vec![
            "agent".into(),
            "--master".into(),
            master.to_string(),
            "--port".into(),
            port.to_string(),
            "--work_dir".into(),
            work_dir.display().to_string(),
        ];
        // A cgroup parent of its own, removed when the agent is dropped, so test runs
        // leave no cgroups behind (hundreds of stale ones slow every launch down).
        let cgroups_root = (!extra.iter().any(|a| a == "--cgroups_root")).then(|| {
            static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            format!("strata-test/{}-{n}", std::process::id())
        });
        if let Some(root) = &cgroups_root {
            args.extend(["--cgroups_root".into(), root.clone()]);
        }
        args.extend(extra);
        let (proc, addr) = Proc::spawn("agent", bin, args, work_dir.join("agent.log"));
        Self {
            proc,
            addr,
            work_dir: work_dir.to_path_buf(),
            cgroups_root,
        }
    }

    /// kill -9 (executors keep running until they notice) and start again on the same
    /// port and work dir.
    pub fn restart(&mut self) {
        let port = self.addr.rsplit(':').next().unwrap_or("0").to_string();
        if let Some(i) = self.proc.args.iter().position(|a| a == "--port") {
            self.proc.args[i + 1] = port;
        }
        self.addr = self.proc.restart();
    }
}
