//! The canary test: every command, traced at `trace` level for every crate, with
//! distinctive secrets; no secret or token may show up anywhere but `token`'s stdout.

use std::collections::{BTreeSet, HashMap};

use authdeck_core::store::SecretStore;
use authdeck_emulator::{EmulatorConfig, FaClient, Fault, FaultKind, FaultScope};
use serde_json::Value;

use crate::common::*;

/// Fragments are this long: any excerpt of 2 × WINDOW - 1 characters or more contains
/// one whole aligned window, and so does any excerpt that starts or ends the value.
const WINDOW: usize = 16;

struct Canary {
    name: String,
    value: String,
    /// Subcommands whose stdout may show it (`token` for tokens; `connect` for the
    /// state inside the authorize URL it prints).
    stdout_ok_in: &'static [&'static str],
}

/// Every secret to look for, as fragments (so a truncated excerpt is a leak too) and,
/// for the configured secrets, in other encodings a log might use.
#[derive(Default)]
struct Canaries {
    list: Vec<Canary>,
    /// WINDOW-byte fragment → index into `list`.
    windows: HashMap<Vec<u8>, usize>,
    /// Other encodings (decimal byte list, hex) → index into `list`.
    encoded: Vec<(Vec<u8>, usize)>,
    /// Snapshots of the data dir's files taken along the way (a -wal or -shm file may
    /// exist only while a command runs or right after it).
    files: Vec<(std::path::PathBuf, Vec<u8>)>,
}

impl Canaries {
    fn add(
        &mut self,
        name: impl Into<String>,
        value: &str,
        stdout_ok_in: &'static [&'static str],
    ) -> Option<usize> {
        assert!(
            value.is_ascii() && value.len() >= WINDOW,
            "a canary is distinctive"
        );
        if self.list.iter().any(|c| c.value == value) {
            return None;
        }
        let index = self.list.len();
        self.list.push(Canary {
            name: name.into(),
            value: value.to_owned(),
            stdout_ok_in,
        });
        // JWTs share their header segment: fragments start after it.
        let body = match value
            .strip_prefix("eyJ")
            .and_then(|_| value.split_once('.'))
        {
            Some((_, rest)) => rest,
            None => value,
        };
        let mut starts: Vec<usize> = (0..=body.len() - WINDOW).step_by(WINDOW).collect();
        starts.push(body.len() - WINDOW);
        for start in starts {
            self.windows
                .entry(body.as_bytes()[start..start + WINDOW].to_vec())
                .or_insert(index);
        }
        Some(index)
    }

    /// A configured secret: also as `[67, 65, 78, …]` (how zbus and friends print byte
    /// buffers) and as hex.
    fn add_secret(&mut self, name: &str, value: &str) {
        let index = self.add(name, value, &[]).expect("distinct secrets");
        let decimal: Vec<String> = value.bytes().map(|b| b.to_string()).collect();
        self.encoded.push((decimal.join(", ").into_bytes(), index));
        let hex: String = value.bytes().map(|b| format!("{b:02x}")).collect();
        self.encoded.push((hex.into_bytes(), index));
    }

    fn add_tokens_of(&mut self, what: &str, bundle: &Value) {
        if let Some(a) = bundle["access_token"].as_str() {
            self.add(format!("{what} access token"), a, &["token"]);
        }
        if let Some(r) = bundle["refresh_token"].as_str() {
            self.add(format!("{what} refresh token"), r, &["token"]);
        }
    }

    /// Which canaries occur (wholly or as a fragment) in `haystack`.
    fn found_in(&self, haystack: &[u8]) -> BTreeSet<usize> {
        let mut found = BTreeSet::new();
        if haystack.len() >= WINDOW {
            for w in haystack.windows(WINDOW) {
                if let Some(&i) = self.windows.get(w) {
                    found.insert(i);
                }
            }
        }
        for (needle, i) in &self.encoded {
            if haystack
                .windows(needle.len())
                .any(|w| w == needle.as_slice())
            {
                found.insert(*i);
            }
        }
        found
    }

    /// `CANA… (24 chars)`: enough to tell which, never the secret.
    fn describe(&self, index: usize) -> String {
        let c = &self.list[index];
        format!("{} [{}… ({} chars)]", c.name, &c.value[..4], c.value.len())
    }
}

fn canary_config() -> EmulatorConfig {
    let mut config = EmulatorConfig::demo();
    config.flowaccount.clients[0].client_secret = "CANARY-flowaccount-secret-2b9d".into();
    config.fedex.projects[0].client_secret = "CANARY-fedex-secret-7f3a".into();
    config.fedex.projects[0].children[0].child_secret = "CANARY-child-secret-51c8".into();
    config.iot.users[0].password = "CANARY-iot-password-e604".into();
    config
}

/// Snapshot every current token bundle into the canaries (called after every command,
/// so every generation is seen before it is replaced).
fn harvest(fx: &Fixture, canaries: &mut Canaries) {
    canaries.files.extend(fx.data_files());
    for (id, generation) in fx.stored_connections() {
        if let Some(bundle) = fx.current_tokens(&id) {
            canaries.add_tokens_of(
                &format!("connection {} gen {generation}", &id[..8]),
                &bundle,
            );
        }
    }
    // Every member of every token set, current or not.
    for (set, entry) in fx.stored_token_sets() {
        let Some(entry) = entry else { continue };
        for (id, member) in entry["members"].as_object().into_iter().flatten() {
            canaries.add_tokens_of(
                &format!("set {} member {}", &set[..8], &id[..8]),
                &member["tokens"],
            );
        }
    }
}

#[test]
fn no_secret_or_token_leaks_into_output_logs_errors_or_files() {
    let mut fx = Fixture::with_config(canary_config());
    fx.log = Some("trace".into());
    let fx = fx;
    let mut canaries = Canaries::default();
    canaries.add_secret("FlowAccount client secret", &fx.fa_secret());
    canaries.add_secret("FedEx project secret", &fx.fedex_secret());
    canaries.add_secret("FedEx child secret", &fx.child_secret());
    canaries.add_secret("IoT password", &fx.iot_password());
    let mut json_errors: Vec<(String, Value)> = Vec::new();
    let mut expect_error = |run: &Run, json: bool| {
        assert_ne!(
            run.code,
            Some(0),
            "this command should fail: `{}`",
            run.args.join(" ")
        );
        if json {
            // With trace logging on, the error object is one line among the logs.
            let line = run
                .stderr
                .lines()
                .rev()
                .find(|l| l.starts_with("{\"code\""))
                .unwrap_or_else(|| panic!("no JSON error on stderr of `{}`", run.args.join(" ")));
            let obj: Value = serde_json::from_str(line).unwrap_or_else(|e| {
                panic!(
                    "the JSON error does not parse ({e}) for `{}`",
                    run.args.join(" ")
                )
            });
            assert!(
                obj["code"].is_string() && obj["message"].is_string(),
                "{obj}"
            );
            json_errors.push((run.args.join(" "), obj));
        }
    };

    // --- clients --------------------------------------------------------------
    fx.add_flowaccount_client("fa", None);
    fx.add_fedex_client("fedex");
    fx.add_iot_client("iot");
    let port = free_port();
    let loopback = format!("http://127.0.0.1:{port}/callback");
    fx.control().register_flowaccount_client(FaClient {
        client_id: fx.config.flowaccount.clients[0].client_id.clone(),
        client_secret: fx.fa_secret(),
        redirect_uris: vec![
            "com.authdeck.desktop:/oauth/callback".into(),
            loopback.clone(),
        ],
    });
    fx.add_flowaccount_client("fa-loop", Some(&loopback));
    fx.ok(&["client", "list"]);
    fx.ok(&["--json", "client", "list"]);
    let bad = fx.run_env(
        &[
            "--json",
            "client",
            "add",
            "fedex",
            "--name",
            "bad",
            "--client-id",
            "k",
            "--token-url",
            "http://example.com/t",
        ],
        &[("AUTHDECK_CLIENT_SECRET", &fx.fedex_secret())],
    );
    expect_error(&bad, true);

    // --- connect ---------------------------------------------------------------
    fx.connect_fedex_plain("fedex");
    harvest(&fx, &mut canaries);
    let child_key = fx.child_key();
    fx.run_stdin(
        &[
            "connect",
            "fedex",
            "--client",
            "fedex",
            "--grant",
            "csp-credentials",
            "--child-key",
            &child_key,
            "--child-secret-stdin",
        ],
        &format!("{}\n", fx.child_secret()),
    )
    .assert_code(0);
    harvest(&fx, &mut canaries);
    fx.run_env(
        &[
            "--json",
            "connect",
            "fedex",
            "--client",
            "fedex",
            "--grant",
            "client-pc-credentials",
            "--child-key",
            &child_key,
        ],
        &[("AUTHDECK_CHILD_SECRET", &fx.child_secret())],
    )
    .assert_code(0);
    harvest(&fx, &mut canaries);
    let iot = fx.connect_iot("iot");
    harvest(&fx, &mut canaries);
    // A failed login must not echo the password (right password, unknown user).
    let failed_login = fx.run_stdin(
        &[
            "--json",
            "connect",
            "iot",
            "--client",
            "iot",
            "--username",
            "nobody",
            "--password-stdin",
        ],
        &format!("{}\n", fx.iot_password()),
    );
    expect_error(&failed_login, true);

    // FlowAccount, custom scheme: the authorize URL (with its state) is the one thing
    // `connect flowaccount` prints on stdout.
    let url = fx.begin_flowaccount("fa");
    let state = query_param(&url, "state").unwrap();
    canaries.add("authorization state", &state, &["connect"]);
    // PKCE is on by default: the verifier waits in the keyring until the callback.
    let verifier_keys: Vec<String> = fx
        .keyring_keys()
        .into_iter()
        .filter(|k| k.ends_with("/pkce_verifier"))
        .collect();
    assert!(
        !verifier_keys.is_empty(),
        "a pending FlowAccount authorization keeps a PKCE verifier"
    );
    for key in &verifier_keys {
        let verifier = fx
            .keyring()
            .get(key)
            .expect("the keyring answers")
            .expect("the verifier is stored");
        canaries.add("PKCE verifier", verifier.expose(), &[]);
    }
    let redirect = fx.approve(&url, FA_BUSINESS);
    let code = query_param(&redirect, "code").expect("code in the redirect");
    canaries.add("authorization code", &code, &[]);
    let fa = fx.json(&["callback", &redirect]);
    harvest(&fx, &mut canaries);
    // Replayed and forged callbacks (their errors go to the history too).
    expect_error(&fx.run(&["--json", "callback", &redirect]), true);
    expect_error(&fx.run(&["callback", &redirect]), false);

    // FlowAccount, loopback.
    let result = fx.connect_flowaccount_loopback("fa-loop", FA_BUSINESS_2);
    assert_eq!(result.run.code, Some(0), "{}", result.run.describe());
    let state2 = query_param(&result.authorize_url, "state").unwrap();
    canaries.add("loopback authorization state", &state2, &["connect"]);
    let code2 = query_param(&result.redirect, "code").unwrap();
    canaries.add("loopback authorization code", &code2, &[]);
    assert!(
        !result.page.contains(&code2),
        "the browser page shows the code"
    );
    canaries
        .files
        .extend(result.files_while_waiting.iter().cloned());
    harvest(&fx, &mut canaries);

    // --- reading -----------------------------------------------------------------
    fx.ok(&["list"]);
    fx.ok(&["--json", "list"]);
    fx.ok(&["list", "--csv"]);
    let ids: Vec<String> = fx
        .stored_connections()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids.len(), 6, "3 FedEx, 1 IoT, 2 FlowAccount");
    for id in &ids {
        fx.ok(&["status", id]);
        fx.ok(&["--json", "status", id]);
        fx.ok(&["token", id]);
        fx.ok(&["token", id, "--min-validity", "90000"]);
        harvest(&fx, &mut canaries);
        fx.ok(&["history", id]);
    }

    // --- refresh -------------------------------------------------------------------
    for id in &ids {
        fx.ok(&["refresh", id]);
        harvest(&fx, &mut canaries);
    }
    fx.json(&["refresh", "--all"]);
    harvest(&fx, &mut canaries);
    fx.ok(&["refresh", "--all"]);
    harvest(&fx, &mut canaries);

    // Refreshes killed right after their answers reached the journal: until the next
    // refresh adopts them, the journal (sealed) holds the only copy of the new tokens.
    let fa_id = id_of(&fa);
    for (args, point) in [
        (vec!["refresh", fa_id.as_str()], "after_answer_journalled"),
        (vec!["refresh", "--all"], "before_token_set_written"),
    ] {
        let killed = fx.run_env(&args, &[("AUTHDECK_CRASH_AT", point)]);
        assert_eq!(killed.code, None, "{}", killed.describe());
        let journal: Vec<_> = fx
            .data_files()
            .into_iter()
            .filter(|(p, bytes)| {
                p.parent().is_some_and(|d| d.ends_with("journal")) && !bytes.is_empty()
            })
            .collect();
        assert!(!journal.is_empty(), "the journal holds the answer");
        canaries.files.extend(journal);
        // The next refresh adopts the journalled tokens: harvested as current ones.
        fx.ok(&args);
        harvest(&fx, &mut canaries);
    }

    // Provider errors with trace logs on: 500, HTML, malformed JSON.
    for kind in [
        FaultKind::ServerError { status: 500 },
        FaultKind::HtmlBody { status: 502 },
        FaultKind::MalformedJson,
        FaultKind::MissingAccessToken,
    ] {
        fx.control()
            .push_fault(Fault::next(FaultScope::All, kind, 1));
        expect_error(&fx.run(&["--json", "refresh", &id_of(&fa)]), true);
    }

    // Re-authorization: the rotated-out refresh token of gen 1 comes back.
    let fa_id = id_of(&fa);
    let current = fx.current_tokens(&fa_id).unwrap();
    let current_refresh = current["refresh_token"].as_str().unwrap().to_owned();
    let client_id = fx.config.flowaccount.clients[0].client_id.clone();
    let secret = fx.fa_secret();
    let (status, _) = fx.post_form(
        &fx.emulator.flowaccount_token_url(),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &current_refresh),
            ("client_id", &client_id),
            ("client_secret", &secret),
        ],
    );
    assert_eq!(status, 200);
    let reauth = fx.run(&["--json", "refresh", &fa_id]);
    assert_eq!(reauth.code, Some(3), "{}", reauth.describe());
    expect_error(&reauth, true);
    expect_error(&fx.run(&["refresh", &fa_id]), false);
    expect_error(&fx.run(&["--json", "token", &fa_id]), true);
    let all = fx.run(&["--json", "refresh", "--all"]);
    assert_eq!(
        all.code,
        Some(0),
        "the dead connection is skipped: {}",
        all.describe()
    );
    harvest(&fx, &mut canaries);
    fx.ok(&["status", &fa_id]);

    // --- history, logout, removal ---------------------------------------------------
    fx.ok(&["history"]);
    fx.ok(&["--json", "history"]);
    fx.json(&["logout", &id_of(&iot)]);
    assert!(fx.control().iot_sessions().iter().all(|s| s.revoked));
    for id in &ids {
        if *id != id_of(&iot) {
            fx.ok(&["logout", id]);
        }
    }
    expect_error(&fx.run(&["--json", "logout", &fa_id]), true);
    fx.ok(&["history"]);
    fx.ok(&["client", "remove", "fedex"]);
    fx.ok(&["client", "remove", "fa"]);

    // --- the verdict ---------------------------------------------------------------------
    let runs = fx.all_runs();
    assert!(runs.len() > 60, "every command ran ({} runs)", runs.len());
    assert!(
        runs.iter().any(|r| r.stderr.contains("TRACE")),
        "trace logging reached stderr (else this test proves little)"
    );
    assert!(
        runs.iter()
            .any(|r| r.stderr.contains("hyper") || r.stderr.contains("reqwest")),
        "HTTP-stack logs reached stderr"
    );
    // The answer journal's key: with it, a journal file could be opened.
    let journal_key = fx
        .keyring()
        .get("journal/key")
        .expect("the keyring answers")
        .expect("refreshes made a journal key");
    canaries.add("journal key", journal_key.expose(), &[]);

    let token_canaries = canaries
        .list
        .iter()
        .filter(|c| c.name.contains("token"))
        .count();
    assert!(
        token_canaries > 20,
        "tokens were harvested ({token_canaries})"
    );

    let mut leaks = Vec::new();
    for run in &runs {
        let cmd = run.command_words().join(" ");
        let first = run.command_words().first().copied().unwrap_or("");
        for i in canaries.found_in(run.stderr.as_bytes()) {
            leaks.push(format!(
                "{} in stderr of `authdeckctl {cmd}`",
                canaries.describe(i)
            ));
        }
        for i in canaries.found_in(run.stdout.as_bytes()) {
            if !canaries.list[i].stdout_ok_in.contains(&first) {
                leaks.push(format!(
                    "{} in stdout of `authdeckctl {cmd}`",
                    canaries.describe(i)
                ));
            }
        }
    }
    for (cmd, obj) in &json_errors {
        for i in canaries.found_in(obj.to_string().as_bytes()) {
            leaks.push(format!(
                "{} in the --json error of `{cmd}`",
                canaries.describe(i)
            ));
        }
    }
    let mut files = fx.data_files();
    files.append(&mut canaries.files);
    let names: Vec<String> = files
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n == "authdeck.sqlite3"),
        "files: {names:?}"
    );
    for (path, bytes) in &files {
        for i in canaries.found_in(bytes) {
            let leak = format!("{} in the file {}", canaries.describe(i), path.display());
            if !leaks.contains(&leak) {
                leaks.push(leak);
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "{} leak(s) of {} canaries over {} commands:\n{}",
        leaks.len(),
        canaries.list.len(),
        runs.len(),
        leaks.join("\n")
    );
}
