//! The app's processes outside the session: a second instance, the in-app emulator's
//! admin API, and waiting until the previous test's app is gone.

use super::*;

/// What a finished second instance did.
pub struct SecondInstance {
    pub status: std::process::ExitStatus,
    pub output: String,
    pub took: Duration,
}

/// Launch the app binary a second time with `url` as its argument, in this (the
/// app's) D-Bus session and environment, as the OS does for a `com.authdeck.desktop:`
/// link; it must hand the URL over and exit by itself within 15 s.
pub async fn launch_second_instance(env: &E2eEnv, url: &str) -> Result<SecondInstance> {
    let started = Instant::now();
    let mut child = tokio::process::Command::new(&env.app)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", env.app.display()))?;
    let pid = child.id();
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let read = async {
        use tokio::io::AsyncReadExt as _;
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let _ = tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
        let mut text = String::from_utf8_lossy(&out).into_owned();
        text.push_str(&String::from_utf8_lossy(&err));
        text
    };
    let waited = tokio::time::timeout(Duration::from_secs(15), async {
        let (status, output) = tokio::join!(child.wait(), read);
        (status, output)
    })
    .await;
    match waited {
        Ok((status, output)) => Ok(SecondInstance {
            status: status?,
            output,
            took: started.elapsed(),
        }),
        Err(_) => {
            let _ = child.kill().await;
            bail!(
                "the second instance (pid {pid:?}) launched with the redirect did not exit within 15 s: \
                 single-instance did not take over (is the app on the same D-Bus session?)"
            )
        }
    }
}

/// GET a JSON document of the in-app emulator's admin API.
pub async fn emulator_admin(path: &str) -> Result<Value> {
    let url = format!("{SANDBOX_BASE}{path}");
    // The sandbox's /admin token, which scripts/e2e.sh gave the app (debug builds honour it).
    let token = std::env::var("AUTHDECK_EMULATOR_ADMIN_TOKEN")
        .context("AUTHDECK_EMULATOR_ADMIN_TOKEN is not set: run the tests with scripts/e2e.sh")?;
    let resp = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?
        .get(&url)
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = resp.status();
    if !status.is_success() {
        bail!("GET {url} answered {status}");
    }
    resp.json()
        .await
        .with_context(|| format!("GET {url}: not JSON"))
}

/// Pids of running `authdeck` processes of this run (the binary under test, with our
/// keyring service in their environment).
pub(crate) fn instances(env: &E2eEnv) -> Vec<u32> {
    let want = std::fs::canonicalize(&env.app).unwrap_or_else(|_| env.app.clone());
    let marker = format!("AUTHDECK_KEYRING_SERVICE={}", env.keyring_service);
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let proc = Path::new("/proc").join(pid.to_string());
            let exe = std::fs::read_link(proc.join("exe")).ok();
            exe.as_deref() == Some(want.as_path())
                && std::fs::read(proc.join("environ"))
                    .map(|env| env.split(|b| *b == 0).any(|kv| kv == marker.as_bytes()))
                    .unwrap_or(false)
        })
        .collect()
}

/// The D-Bus name tauri-plugin-single-instance holds for the running app
/// (`<identifier>.SingleInstance`).
pub const SINGLE_INSTANCE_NAME: &str = "com.authdeck.desktop.SingleInstance";

/// Whether some process (a running app) owns [`SINGLE_INSTANCE_NAME`] on our bus.
fn single_instance_name_owned() -> bool {
    Command::new("dbus-send")
        .args([
            "--session",
            "--print-reply",
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.NameHasOwner",
            &format!("string:{SINGLE_INSTANCE_NAME}"),
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("boolean true"))
        .unwrap_or(false)
}

fn sandbox_port_open() -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], 47801)),
        Duration::from_millis(200),
    )
    .is_ok()
}

/// Why the previous app is not gone yet, or `None` when it is.
fn previous_app_still_there(env: &E2eEnv) -> Option<String> {
    let pids = instances(env);
    if !pids.is_empty() {
        return Some(format!("app processes {pids:?} are running"));
    }
    // A process that is exiting loses /proc/PID/exe before it closes its sockets: a new
    // app started then finds the single-instance name still taken, forwards its
    // arguments to the dying one and fails ("NoReply"). So wait for the name and the
    // sandbox port to be released too.
    if single_instance_name_owned() {
        return Some(format!("{SINGLE_INSTANCE_NAME} is still owned on the bus"));
    }
    if sandbox_port_open() {
        return Some("127.0.0.1:47801 (the sandbox) still accepts connections".into());
    }
    None
}

/// The previous test's app must be gone (it holds the single-instance name and the
/// sandbox port). Waits up to 10 s, then ends its processes by pid.
pub(crate) async fn wait_for_no_instance(env: &E2eEnv) -> Result<()> {
    let gone = wait_for(
        "the previous app instance to exit",
        Duration::from_secs(10),
        || async { Ok(previous_app_still_there(env).is_none().then_some(())) },
    )
    .await;
    if gone.is_ok() {
        return Ok(());
    }
    let pids = instances(env);
    eprintln!(
        "[e2e] the previous app instance is still there ({}): ending pids {pids:?}",
        previous_app_still_there(env).unwrap_or_default()
    );
    for pid in &pids {
        let _ = Command::new("kill").arg(pid.to_string()).status();
    }
    wait_for(
        "the previous app instance to end after SIGTERM",
        Duration::from_secs(5),
        || async { Ok(previous_app_still_there(env).is_none().then_some(())) },
    )
    .await
    .map_err(|e| {
        anyhow!(
            "{e:#}: {}",
            previous_app_still_there(env).unwrap_or_default()
        )
    })
}
