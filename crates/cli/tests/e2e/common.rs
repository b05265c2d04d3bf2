//! The fixture every end-to-end test starts from: a private data directory, a private
//! keyring service on the real Secret Service, an in-process provider emulator, and the
//! real `authdeckctl` binary run as a child process. Every run is recorded, so a test
//! can look back at what every command printed.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, Output, Stdio};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use authdeck_core::store::db::Db;
use authdeck_core::store::keyring::KeyringStore;
use authdeck_core::store::SecretStore;
use authdeck_emulator::{EmulatorConfig, RunningEmulator};
use serde_json::Value;

/// Every child process is killed after this long (a hung command fails its test).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// The demo FlowAccount user (the emulator's login page), not something Authdeck sees.
pub const FA_USER: &str = "demo@example.com";
pub const FA_PASSWORD: &str = "demo";
pub const FA_BUSINESS: &str = "FA-100001";
pub const FA_BUSINESS_2: &str = "FA-100002";

/// Env vars the CLI reads secrets or settings from: never inherited from the test runner.
const SCRUBBED_ENV: &[&str] = &[
    "AUTHDECK_CLIENT_SECRET",
    "AUTHDECK_CHILD_SECRET",
    "AUTHDECK_PASSWORD",
    "AUTHDECK_LOG",
    "AUTHDECK_DATA_DIR",
    "AUTHDECK_KEYRING_SERVICE",
    "RUST_LOG",
];

pub fn require_keyring() {
    assert!(
        std::env::var_os("AUTHDECK_TEST_KEYRING").is_some(),
        "these tests use the real Secret Service: run them under scripts/with-keyring.sh (make test)"
    );
}

/// What one `authdeckctl` run did.
#[derive(Debug, Clone)]
pub struct Run {
    pub args: Vec<String>,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from_output(args: Vec<String>, out: Output) -> Self {
        Run {
            args,
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The subcommand words, without flags and values (`["client", "add"]`, `["token"]`).
    pub fn command_words(&self) -> Vec<&str> {
        let mut words = Vec::new();
        for a in &self.args {
            if a.starts_with('-') {
                continue;
            }
            words.push(a.as_str());
            if words.len() == 2 {
                break;
            }
        }
        words
    }

    /// For assertion messages: the command line and the tail of its output.
    pub fn describe(&self) -> String {
        format!(
            "`authdeckctl {}` exited {:?}\n--- stdout (tail) ---\n{}\n--- stderr (tail) ---\n{}",
            self.args.join(" "),
            self.code,
            tail(&self.stdout, 2000),
            tail(&self.stderr, 2000)
        )
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.describe()))
    }

    /// The `--json` error object on stderr (the whole of stderr, one object).
    pub fn json_error(&self) -> Value {
        let text = self.stderr.trim();
        assert_eq!(
            text.lines().count(),
            1,
            "a --json error is one line on stderr: {}",
            self.describe()
        );
        serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("stderr is not one JSON object ({e}): {}", self.describe()))
    }

    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "unexpected exit code: {}",
            self.describe()
        );
        self
    }

    /// Exit `code` with exactly one line on stderr that mentions `error_code`.
    pub fn assert_one_line_error(&self, code: i32, error_code: &str) -> &Self {
        self.assert_code(code);
        let text = self.stderr.trim_end();
        assert_eq!(
            text.lines().count(),
            1,
            "an error is ONE line on stderr: {}",
            self.describe()
        );
        assert!(
            text.contains(error_code),
            "stderr should name {error_code}: {}",
            self.describe()
        );
        self
    }
}

fn tail(s: &str, n: usize) -> &str {
    if s.len() <= n {
        return s;
    }
    let mut start = s.len() - n;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// One test's world. Field order matters: the emulator stops before its runtime.
pub struct Fixture {
    pub emulator: RunningEmulator,
    pub config: EmulatorConfig,
    pub service: String,
    pub dir: tempfile::TempDir,
    /// `AUTHDECK_LOG` for every command (the canary test sets `trace`).
    pub log: Option<String>,
    pub runs: Mutex<Vec<Run>>,
    pub rt: tokio::runtime::Runtime,
}

impl Fixture {
    pub fn new() -> Self {
        Self::with_config(EmulatorConfig::demo())
    }

    pub fn with_config(config: EmulatorConfig) -> Self {
        require_keyring();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let emulator = rt
            .block_on(authdeck_emulator::start(
                config.clone(),
                "127.0.0.1:0".parse().unwrap(),
            ))
            .expect("emulator starts");
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        Fixture {
            emulator,
            config,
            service: format!("authdeck-test-{}", uuid::Uuid::new_v4()),
            dir,
            log: None,
            runs: Mutex::new(Vec::new()),
            rt,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn fa_secret(&self) -> String {
        self.config.flowaccount.clients[0].client_secret.clone()
    }

    pub fn fedex_secret(&self) -> String {
        self.config.fedex.projects[0].client_secret.clone()
    }

    pub fn fedex_key(&self) -> String {
        self.config.fedex.projects[0].client_id.clone()
    }

    pub fn child_key(&self) -> String {
        self.config.fedex.projects[0].children[0].child_key.clone()
    }

    pub fn child_secret(&self) -> String {
        self.config.fedex.projects[0].children[0]
            .child_secret
            .clone()
    }

    pub fn iot_user(&self) -> String {
        self.config.iot.users[0].username.clone()
    }

    pub fn iot_password(&self) -> String {
        self.config.iot.users[0].password.clone()
    }

    /// `authdeckctl` with this fixture's data dir, keyring service and log setting.
    pub fn std_command(&self) -> StdCommand {
        let mut cmd = StdCommand::new(assert_cmd::cargo::cargo_bin("authdeckctl"));
        for name in SCRUBBED_ENV {
            cmd.env_remove(name);
        }
        cmd.env("AUTHDECK_DATA_DIR", self.data_dir())
            .env("AUTHDECK_KEYRING_SERVICE", &self.service)
            // Nothing may open a real browser.
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env("BROWSER", "true");
        if let Some(filter) = &self.log {
            cmd.env("AUTHDECK_LOG", filter);
        }
        cmd
    }

    /// Run with arguments, optional stdin and extra environment; recorded.
    pub fn run_full(
        &self,
        args: &[&str],
        stdin: Option<&str>,
        envs: &[(&str, &str)],
        remove_env: &[&str],
    ) -> Run {
        let mut std_cmd = self.std_command();
        for (k, v) in envs {
            std_cmd.env(k, v);
        }
        for k in remove_env {
            std_cmd.env_remove(k);
        }
        std_cmd.args(args);
        let mut cmd = assert_cmd::Command::from_std(std_cmd);
        cmd.timeout(COMMAND_TIMEOUT);
        cmd.write_stdin(stdin.unwrap_or("").to_owned());
        let out = cmd.output().expect("authdeckctl runs");
        let run = Run::from_output(args.iter().map(|s| s.to_string()).collect(), out);
        self.record(run.clone());
        run
    }

    pub fn record(&self, run: Run) {
        self.runs.lock().unwrap().push(run);
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_full(args, None, &[], &[])
    }

    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Run {
        self.run_full(args, Some(stdin), &[], &[])
    }

    pub fn run_env(&self, args: &[&str], envs: &[(&str, &str)]) -> Run {
        self.run_full(args, None, envs, &[])
    }

    /// Run and require exit 0.
    pub fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        run.assert_code(0);
        run
    }

    /// Run with `--json` first and require exit 0; the parsed stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        self.ok(&all).json()
    }

    // ---- clients ---------------------------------------------------------------

    pub fn add_flowaccount_client(&self, name: &str, redirect_uri: Option<&str>) -> Run {
        let authorize = self.emulator.flowaccount_authorize_url();
        let token = self.emulator.flowaccount_token_url();
        let client_id = self.config.flowaccount.clients[0].client_id.clone();
        let mut args = vec![
            "client",
            "add",
            "flowaccount",
            "--name",
            name,
            "--client-id",
            &client_id,
            "--client-secret-stdin",
            "--authorize-url",
            &authorize,
            "--token-url",
            &token,
        ];
        if let Some(uri) = redirect_uri {
            args.extend_from_slice(&["--redirect-uri", uri]);
        }
        let run = self.run_stdin(&args, &format!("{}\n", self.fa_secret()));
        run.assert_code(0);
        run
    }

    /// The FedEx secret goes in through `AUTHDECK_CLIENT_SECRET` (the other way in).
    pub fn add_fedex_client(&self, name: &str) -> Run {
        let token = self.emulator.fedex_token_url();
        let key = self.fedex_key();
        let secret = self.fedex_secret();
        let run = self.run_env(
            &[
                "client",
                "add",
                "fedex",
                "--name",
                name,
                "--client-id",
                &key,
                "--token-url",
                &token,
            ],
            &[("AUTHDECK_CLIENT_SECRET", &secret)],
        );
        run.assert_code(0);
        run
    }

    pub fn add_iot_client(&self, name: &str) -> Run {
        let auth = self.emulator.iot_auth_url();
        let client_id = self.config.iot.client_id.clone();
        self.ok(&[
            "client",
            "add",
            "iot",
            "--name",
            name,
            "--client-id",
            &client_id,
            "--auth-url",
            &auth,
        ])
    }

    /// Clients `fa`, `fedex` and `iot` pointing at the emulator.
    pub fn add_demo_clients(&self) {
        self.add_flowaccount_client("fa", None);
        self.add_fedex_client("fedex");
        self.add_iot_client("iot");
    }

    // ---- connecting ------------------------------------------------------------

    pub fn connect_fedex_plain(&self, client: &str) -> Value {
        self.json(&["connect", "fedex", "--client", client])
    }

    pub fn connect_iot(&self, client: &str) -> Value {
        let user = self.iot_user();
        let run = self.run_stdin(
            &[
                "--json",
                "connect",
                "iot",
                "--client",
                client,
                "--username",
                &user,
                "--password-stdin",
            ],
            &format!("{}\n", self.iot_password()),
        );
        run.assert_code(0);
        run.json()
    }

    /// `connect flowaccount --no-browser` (custom scheme): the authorize URL from stdout.
    pub fn begin_flowaccount(&self, client: &str) -> String {
        let run = self.ok(&["connect", "flowaccount", "--client", client, "--no-browser"]);
        let url = run.stdout.trim().to_owned();
        assert_eq!(
            url.lines().count(),
            1,
            "stdout is exactly the authorize URL: {}",
            run.describe()
        );
        assert!(
            url.starts_with(&self.emulator.flowaccount_authorize_url()),
            "{}",
            run.describe()
        );
        url
    }

    /// Approve at the emulator's consent page like a user; the redirect Location.
    pub fn approve(&self, authorize_url: &str, business: &str) -> String {
        self.rt
            .block_on(authdeck_emulator::approve(
                authorize_url,
                FA_USER,
                FA_PASSWORD,
                business,
            ))
            .expect("the emulator approves")
    }

    /// The custom-scheme round trip: connect, approve, `callback URL`. Returns the
    /// connection (`--json callback`) and the redirect URL (it carries the code).
    pub fn connect_flowaccount(&self, client: &str, business: &str) -> (Value, String) {
        let url = self.begin_flowaccount(client);
        let redirect = self.approve(&url, business);
        assert!(
            redirect.starts_with("com.authdeck.desktop:/oauth/callback?"),
            "redirect: {}",
            query_free(&redirect)
        );
        let conn = self.json(&["callback", &redirect]);
        (conn, redirect)
    }

    /// The loopback round trip with `connect flowaccount --no-browser` running in the
    /// background; see [`LoopbackResult`].
    pub fn connect_flowaccount_loopback(&self, client: &str, business: &str) -> LoopbackResult {
        self.connect_flowaccount_loopback_with(client, business, false)
    }

    /// With `json`, runs `--json connect flowaccount …` and takes the authorize URL from
    /// the first stdout line if it is one, else from the first JSON object printed.
    pub fn connect_flowaccount_loopback_with(
        &self,
        client: &str,
        business: &str,
        json: bool,
    ) -> LoopbackResult {
        self.connect_flowaccount_loopback_probed(client, business, json, |_| {})
    }

    /// Like [`Self::connect_flowaccount_loopback_with`], with `probe` run while the CLI
    /// listens, before the user approves (it gets the authorize URL; it may send the
    /// listener whatever it likes).
    pub fn connect_flowaccount_loopback_probed(
        &self,
        client: &str,
        business: &str,
        json: bool,
        probe: impl FnOnce(&str),
    ) -> LoopbackResult {
        let mut args = vec!["connect", "flowaccount", "--client", client, "--no-browser"];
        if json {
            args.insert(0, "--json");
        }
        let mut cmd = self.std_command();
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = KillOnDrop(cmd.spawn().expect("authdeckctl starts"));
        let stdout = child.0.stdout.take().unwrap();
        let mut stderr = child.0.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        let out_thread = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line.clone());
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        let err_thread = std::thread::spawn(move || {
            let mut all = Vec::new();
            let _ = stderr.read_to_end(&mut all);
            String::from_utf8_lossy(&all).into_owned()
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut first_output = String::new();
        let authorize_url = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .expect("the authorize URL on stdout within 30 s");
            if first_output.is_empty() && line.starts_with("http") {
                break line;
            }
            first_output.push_str(&line);
            first_output.push('\n');
            if let Ok(v) = serde_json::from_str::<Value>(&first_output) {
                break v["authorize_url"]
                    .as_str()
                    .expect("authorize_url in the first JSON object")
                    .to_owned();
            }
        };
        // The CLI holds the database open while it waits: -wal / -shm may exist now.
        let files_while_waiting = self.data_files();
        probe(&authorize_url);
        let redirect = self.approve(&authorize_url, business);
        // The browser follows the redirect to the CLI's loopback listener.
        let (page_status, page) = self.rt.block_on(async {
            let http = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap();
            let resp = http
                .get(&redirect)
                .send()
                .await
                .expect("the CLI answers the browser");
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap_or_default())
        });
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let status = loop {
            if let Some(status) = child.0.try_wait().expect("wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "connect flowaccount (loopback) did not exit"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let stdout = out_thread.join().unwrap();
        let stderr = err_thread.join().unwrap();
        let run = Run {
            args: args.iter().map(|s| s.to_string()).collect(),
            code: status.code(),
            stdout,
            stderr,
        };
        self.record(run.clone());
        LoopbackResult {
            run,
            authorize_url,
            redirect,
            page_status,
            page,
            files_while_waiting,
        }
    }

    // ---- reading state behind the CLI's back ----------------------------------

    pub fn keyring(&self) -> KeyringStore {
        KeyringStore::new(self.service.clone())
    }

    /// The token bundle of a connection's generation, straight from the keyring.
    pub fn stored_tokens(&self, connection_id: &str, generation: i64) -> Option<Value> {
        let key = format!("connection/{connection_id}/tokens/{generation}");
        self.keyring()
            .get(&key)
            .expect("keyring readable")
            .map(|s| serde_json::from_str(s.expose()).expect("token bundle is JSON"))
    }

    /// The app's database as the CLI left it; `None` before anything was stored.
    fn db(&self) -> Option<Db> {
        let path = self.data_dir().join("authdeck.sqlite3");
        path.exists()
            .then(|| Db::open(&path).expect("database opens"))
    }

    /// A connection's current token bundle wherever it is — its own entry or the token
    /// set SQLite says it is in — straight from the keyring.
    pub fn current_tokens(&self, connection_id: &str) -> Option<Value> {
        let conn = self.stored_connection(connection_id)?;
        match &conn.token_set {
            None => self.stored_tokens(connection_id, conn.secret_generation),
            Some(set) => {
                let member = self.stored_token_set(set)?["members"][connection_id].clone();
                (member["generation"] == conn.secret_generation).then(|| member["tokens"].clone())
            }
        }
    }

    /// A token set's keyring entry (`{"v":1,"members":{id:{generation,tokens}}}`).
    pub fn stored_token_set(&self, set_id: &str) -> Option<Value> {
        self.keyring()
            .get(&format!("tokenset/{set_id}"))
            .expect("keyring readable")
            .map(|s| serde_json::from_str(s.expose()).expect("token set is JSON"))
    }

    /// Every token set SQLite knows, with its keyring entry (if any).
    pub fn stored_token_sets(&self) -> Vec<(String, Option<Value>)> {
        let Some(db) = self.db() else {
            return Vec::new();
        };
        db.token_set_ids()
            .expect("token sets readable")
            .into_iter()
            .map(|id| {
                let entry = self.stored_token_set(&id);
                (id, entry)
            })
            .collect()
    }

    /// What SQLite records of every token set (for failure messages).
    pub fn token_set_records(&self) -> Vec<authdeck_core::store::db::TokenSetRecord> {
        let Some(db) = self.db() else {
            return Vec::new();
        };
        db.token_set_ids()
            .expect("token sets readable")
            .iter()
            .filter_map(|id| db.token_set(id).expect("token set readable"))
            .collect()
    }

    /// The token set a connection's tokens are in (`None`: its own entry).
    pub fn token_set_of(&self, connection_id: &str) -> Option<String> {
        self.stored_connection(connection_id)?.token_set
    }

    fn stored_connection(&self, connection_id: &str) -> Option<authdeck_core::model::Connection> {
        self.db()?
            .connections()
            .expect("connections readable")
            .into_iter()
            .find(|c| c.id == connection_id)
    }

    /// The user names (keys) of every keyring entry of this test's service, through the
    /// Secret Service's own search (`secret-tool`), so nothing can hide from it.
    pub fn keyring_keys(&self) -> Vec<String> {
        let out = StdCommand::new("secret-tool")
            .args(["search", "--all", "--unlock", "service", &self.service])
            .output()
            .expect("secret-tool runs (libsecret-tools: make deps)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        let mut keys: Vec<String> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("attribute.username = "))
            .map(str::to_owned)
            .collect();
        keys.sort();
        keys
    }

    /// `(id, secret_generation)` of every stored connection (read from SQLite directly).
    pub fn stored_connections(&self) -> Vec<(String, i64)> {
        let Some(db) = self.db() else {
            return Vec::new();
        };
        db.connections()
            .expect("connections readable")
            .into_iter()
            .map(|c| (c.id, c.secret_generation))
            .collect()
    }

    /// Every file below the data dir (SQLite db, -wal, -shm, anything else), as bytes.
    pub fn data_files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        walk(&self.data_dir(), &mut out);
        out
    }

    /// POST a form to a URL (to play a third party against the emulator).
    pub fn post_form(&self, url: &str, form: &[(&str, &str)]) -> (u16, String) {
        self.rt.block_on(async {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap();
            let resp = http.post(url).form(form).send().await.expect("POST");
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap_or_default())
        })
    }

    pub fn control(&self) -> authdeck_emulator::Control {
        self.emulator.control()
    }

    pub fn control_stats(&self) -> Value {
        serde_json::to_value(self.control().stats()).expect("stats as JSON")
    }

    pub fn all_runs(&self) -> Vec<Run> {
        self.runs.lock().unwrap().clone()
    }
}

pub struct LoopbackResult {
    pub run: Run,
    pub authorize_url: String,
    pub redirect: String,
    pub page_status: u16,
    pub page: String,
    pub files_while_waiting: Vec<(PathBuf, Vec<u8>)>,
}

/// A child process we started, killed (by its handle) if the test ends early.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path, bytes));
        }
    }
}

/// A URL without its query (for messages: the query may carry a code).
pub fn query_free(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// A query parameter of a URL (custom schemes included).
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    parsed
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A free loopback port (bound and released; a small race is acceptable in tests).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Connection id from a `--json` connection view.
pub fn id_of(conn: &Value) -> String {
    conn["id"].as_str().expect("connection id").to_owned()
}
