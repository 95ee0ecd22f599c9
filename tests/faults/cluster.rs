//! A private PostgreSQL cluster that a test may stop and start at will,
//! never the shared server the other tests use.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The folder holding `initdb` and `pg_ctl`: `PG_BINDIR`, else what
/// `pg_config --bindir` says, else the newest Debian-style
/// `/usr/lib/postgresql/<version>/bin`. `None` if none has them.
fn bindir() -> Option<PathBuf> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("PG_BINDIR") {
        return Some(PathBuf::from(dir)).filter(|dir| has_tools(dir));
    }
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    if let Some(dir) = from_pg_config.filter(|dir| has_tools(dir)) {
        return Some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| Some((entry.file_name().to_str()?.parse().ok()?, entry.path().join("bin"))))
        .filter(|(_, dir)| has_tools(dir))
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir)
}

pub struct Cluster {
    bindir: PathBuf,
    /// Removed on drop; holds the data folder, its socket and its log.
    root: PathBuf,
    data: PathBuf,
    pub port: u16,
    /// PostgreSQL refuses to run as root: then every tool runs as this user.
    run_as: Option<String>,
}

impl Cluster {
    /// Initialises and starts a cluster on a free loopback port; `None`
    /// (after saying why) when this machine has no PostgreSQL server binaries.
    ///
    /// # Panics
    /// If the binaries are there but the cluster cannot be started.
    pub fn start() -> Option<Self> {
        let Some(bindir) = bindir() else {
            eprintln!("skipped: no PostgreSQL server binaries (set PG_BINDIR to the folder of initdb and pg_ctl)");
            return None;
        };
        Some(Self::init(bindir).unwrap_or_else(|e| panic!("starting a private PostgreSQL cluster: {e}")))
    }

    fn init(bindir: PathBuf) -> Result<Self, String> {
        let run_as = is_root().then(|| std::env::var("PG_TEST_OS_USER").unwrap_or_else(|_| "postgres".to_owned()));
        let root = std::env::temp_dir().join(format!("parley-faults-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&root).map_err(|e| format!("creating {}: {e}", root.display()))?;
        if let Some(user) = &run_as {
            run(Command::new("chown").arg(user).arg(&root))?;
        }
        let port = free_port();
        let cluster = Self { data: root.join("data"), bindir, root, port, run_as };
        cluster.tool("initdb", &["-D", &cluster.data_dir(), "-A", "trust", "-U", "postgres", "--no-sync"])?;
        cluster.start_again()?;
        Ok(cluster)
    }

    /// The admin URL (database `postgres`).
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl -m fast stop`: sessions are told the server is going away
    /// (57P01) and closed; waits until it is down.
    pub fn stop(&self) -> Result<(), String> {
        self.tool("pg_ctl", &["-D", &self.data_dir(), "-m", "fast", "-w", "stop"])
    }

    /// Starts the stopped cluster on the same port; waits until it accepts connections.
    pub fn start_again(&self) -> Result<(), String> {
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.data_dir());
        let log = self.root.join("postgres.log").display().to_string();
        self.tool("pg_ctl", &["-D", &self.data_dir(), "-o", &options, "-l", &log, "-w", "start"])
    }

    fn data_dir(&self) -> String {
        self.data.display().to_string()
    }

    fn tool(&self, name: &str, args: &[&str]) -> Result<(), String> {
        let program = self.bindir.join(name);
        let mut command = match &self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(program);
                command
            }
            None => Command::new(program),
        };
        run(command.args(args).current_dir(&self.root))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.tool("pg_ctl", &["-D", &self.data_dir(), "-m", "immediate", "-w", "stop"]);
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn run(command: &mut Command) -> Result<(), String> {
    let Output { status, stdout, stderr } = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed ({status}): {}{}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        ))
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// A loopback port nothing listens on now.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("its address").port()
}
