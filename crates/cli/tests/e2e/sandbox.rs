//! `authdeckctl sandbox`: a random port unless one is asked for, its clients follow it,
//! they are marked in `list` / `client list` (and `--json`), a stopped sandbox says so,
//! and `authdeckctl sandbox leave` removes the sandbox and nothing else.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::common::*;

/// A running `authdeckctl sandbox …`: killed when dropped.
struct Sandbox {
    child: Child,
    base_url: String,
    output: String,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sandbox {
    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `authdeckctl sandbox ARGS` and wait (bounded) until it says it serves.
fn start(f: &Fixture, args: &[&str]) -> Sandbox {
    let mut cmd = f.std_command();
    cmd.arg("sandbox")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("authdeckctl sandbox starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut output = String::new();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("the sandbox did not get ready; it printed:\n{output}"));
        output.push_str(&line);
        output.push('\n');
        if line.starts_with("Press Ctrl-C") {
            break;
        }
    }
    let base_url = output
        .lines()
        .find_map(|l| l.strip_prefix("Authdeck sandbox listening on "))
        .expect("the address")
        .to_string();
    Sandbox {
        child,
        base_url,
        output,
    }
}

fn port_of(url: &str) -> u16 {
    url::Url::parse(url).unwrap().port().unwrap()
}

fn sandbox_clients(f: &Fixture) -> Vec<Value> {
    f.json(&["client", "list"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["sandbox"] == true)
        .cloned()
        .collect()
}

#[test]
fn the_sandbox_gets_a_random_port_its_clients_follow_it_and_a_stopped_one_says_so() {
    let f = Fixture::new();
    f.add_fedex_client("ship");
    let first = start(&f, &["--add-clients"]);
    let port = port_of(&first.base_url);
    assert_ne!(port, 47801, "no fixed port by default");
    assert!(first.output.contains("Added client sandbox-fedex."));
    // The admin token (43 base64url characters) is not printed, nor anything like one.
    assert!(
        !first.output.split_whitespace().any(|w| w.len() >= 40
            && w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')),
        "{}",
        first.output
    );

    let clients = sandbox_clients(&f);
    assert_eq!(clients.len(), 4, "{clients:?}");
    for c in &clients {
        assert_eq!(
            port_of(c["endpoints"]["token_url"].as_str().unwrap()),
            port,
            "{c}"
        );
    }
    let mine = f.json(&["client", "list"]);
    let ship = mine
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "ship")
        .unwrap();
    assert_eq!(ship["sandbox"], false);

    let demo = f.connect_fedex_plain("sandbox-fedex");
    assert_eq!(demo["sandbox"], true, "{demo}");
    let real = f.connect_fedex_plain("ship");
    assert_eq!(real["sandbox"], false);
    let listed = f.json(&["list"]);
    let marks: Vec<(String, bool)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["client_name"].as_str().unwrap().to_string(),
                c["sandbox"] == true,
            )
        })
        .collect();
    assert!(marks.contains(&("sandbox-fedex".into(), true)), "{marks:?}");
    assert!(marks.contains(&("ship".into(), false)), "{marks:?}");
    let table = f.ok(&["list"]).stdout;
    let demo_row = table
        .lines()
        .find(|l| l.contains("sandbox-fedex"))
        .expect("the demo row");
    assert!(demo_row.contains("built-in sandbox"), "{table}");
    let real_row = table.lines().find(|l| l.contains("ship")).expect("row");
    assert!(!real_row.contains("built-in sandbox"), "{table}");
    let clients_table = f.ok(&["client", "list"]).stdout;
    assert!(clients_table
        .lines()
        .any(|l| l.starts_with("sandbox-iot") && l.contains("built-in sandbox")));

    // Stopped: the sandbox client says what is wrong and how to fix it.
    first.stop();
    let demo_id = id_of(&demo);
    let run = f.run(&["--json", "refresh", &demo_id]);
    run.assert_code(1);
    let err = run.json_error();
    assert_eq!(err["code"], "sandbox_not_running", "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .starts_with("The sandbox is not running"),
        "{err}"
    );
    f.run(&["refresh", &demo_id])
        .assert_one_line_error(1, "sandbox_not_running");
    // A real client is not affected.
    f.ok(&["refresh", &id_of(&real)]);

    // Started again (another random port): the stored sandbox clients follow it.
    let second = start(&f, &[]);
    assert!(second
        .output
        .contains("Client sandbox-fedex points at this sandbox."));
    let port2 = port_of(&second.base_url);
    for c in sandbox_clients(&f) {
        assert_eq!(
            port_of(c["endpoints"]["token_url"].as_str().unwrap()),
            port2
        );
    }
    f.ok(&["refresh", &demo_id]);
    drop(second);

    // A port asked for is the port used.
    let wanted = free_port();
    let third = start(&f, &["--port", &wanted.to_string()]);
    assert_eq!(port_of(&third.base_url), wanted);
}

#[test]
fn sandbox_leave_removes_the_sandbox_and_nothing_else() {
    let f = Fixture::new();
    f.add_fedex_client("ship");
    let real = f.connect_fedex_plain("ship");
    let running = start(&f, &["--add-clients"]);
    let demo = f.connect_fedex_plain("sandbox-fedex");
    let iot = {
        let run = f.run_stdin(
            &[
                "--json",
                "connect",
                "iot",
                "--client",
                "sandbox-iot",
                "--username",
                "operator",
                "--password-stdin",
            ],
            "operator-pass\n",
        );
        run.assert_code(0);
        run.json()
    };
    assert_eq!(iot["sandbox"], true);
    let before = f.keyring_keys();
    let demo_keys: Vec<&String> = before
        .iter()
        .filter(|k| k.contains(&id_of(&demo)) || k.contains(&id_of(&iot)))
        .collect();
    assert_eq!(demo_keys.len(), 2, "{before:?}");
    let sandbox_ids: Vec<String> = sandbox_clients(&f)
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .chain([id_of(&demo), id_of(&iot)])
        .collect();
    let of_sandbox = |k: &String| sandbox_ids.iter().any(|id| k.contains(id.as_str()));
    assert!(
        before.iter().filter(|k| of_sandbox(k)).count() >= 4,
        "{before:?}"
    );
    let others: Vec<String> = before.iter().filter(|k| !of_sandbox(k)).cloned().collect();

    let report = f.json(&["sandbox", "leave"]);
    assert_eq!(
        report["connections"].as_array().unwrap().len(),
        2,
        "{report}"
    );
    assert_eq!(report["clients"].as_array().unwrap().len(), 4, "{report}");
    drop(running);

    assert!(sandbox_clients(&f).is_empty());
    let names: Vec<String> = f
        .json(&["client", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["ship"]);
    let left: Vec<String> = f
        .json(&["list"])
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(left, [id_of(&real)]);
    // The sandbox's entries (client secrets, tokens, child secrets) are gone; every
    // other entry is still there.
    let after = f.keyring_keys();
    assert_eq!(after, others, "before leaving: {before:?}");
    assert!(after.iter().any(|k| k.contains(&id_of(&real))), "{after:?}");
    f.ok(&["refresh", &id_of(&real)]);

    let text = f.ok(&["sandbox", "leave"]).stdout;
    assert!(text.contains("nothing of the sandbox"), "{text}");
}
