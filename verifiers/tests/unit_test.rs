//! The sandboxed unit-test runner: HumanEval's canonical solutions pass and wrong ones fail;
//! hostile programs are contained with the right outcome and leave nothing behind.

#![cfg(all(target_os = "linux", not(grpo_no_sandbox)))]

use std::io::Read;
use std::net::TcpListener;
use std::time::Duration;

use grpo_verifiers::unit_test::{Language, Outcome, Phase, UnitTestConfig, UnitTestRunner};
use grpo_verifiers::{Sample, Verifier, VerifierSet};
use serde_json::{Map, Value, json};

#[path = "../../tests/support/real_data.rs"]
mod support;

fn runner() -> UnitTestRunner {
    UnitTestRunner::new(UnitTestConfig {
        timeout_s: 3.0,
        memory_mb: 256,
        ..Default::default()
    })
    .unwrap()
}

fn row(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

fn simple(tests: &[&str]) -> Map<String, Value> {
    row(json!({ "tests": tests }))
}

fn humaneval() -> Option<Vec<Map<String, Value>>> {
    let path = support::real_data("humaneval/HumanEval.jsonl.gz")?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    Some(
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
    )
}

#[test]
fn every_humaneval_canonical_solution_passes_and_a_wrong_body_fails() {
    let Some(rows) = humaneval() else { return };
    assert_eq!(rows.len(), 164);
    let runner = runner();
    let set = VerifierSet::new(vec![(grpo_verifiers::Member::new("tests", runner), 1.0)]).unwrap();
    let canonical: Vec<String> = rows
        .iter()
        .map(|r| r["canonical_solution"].as_str().unwrap().to_owned())
        .collect();
    let samples: Vec<Sample> = rows
        .iter()
        .zip(&canonical)
        .map(|(r, c)| Sample::new("", c, r))
        .collect();
    let started = std::time::Instant::now();
    let results = set.evaluate_batch(&samples);
    let elapsed = started.elapsed();
    let failures: Vec<String> = results
        .iter()
        .zip(&rows)
        .filter(|(e, _)| e.correct != Some(true))
        .map(|(e, r)| format!("{}: {:?}", r["task_id"], e.members[0].outcome))
        .collect();
    assert!(
        failures.is_empty(),
        "{} canonical solutions failed: {failures:#?}",
        failures.len()
    );
    eprintln!(
        "164 canonical solutions in {elapsed:?} ({:.1} samples/s)",
        164.0 / elapsed.as_secs_f64()
    );

    let wrong = "    return object()\n";
    let samples: Vec<Sample> = rows.iter().map(|r| Sample::new("", wrong, r)).collect();
    let passed: Vec<String> = set
        .evaluate_batch(&samples)
        .iter()
        .zip(&rows)
        .filter(|(e, _)| e.correct != Some(false))
        .map(|(e, r)| format!("{}: {:?}", r["task_id"], e.reward))
        .collect();
    assert!(passed.is_empty(), "wrong bodies not failing: {passed:#?}");
}

fn outcome(runner: &UnitTestRunner, code: &str, tests: &[&str]) -> Outcome {
    runner.run(code, Language::Python, &simple(tests)).unwrap()
}

#[test]
fn partial_credit_counts_tests() {
    let runner = runner();
    let code = "def add(a, b):\n    return a + b if a < 10 else 0\n";
    let result = outcome(
        &runner,
        code,
        &[
            "assert add(1, 2) == 3",
            "assert add(20, 1) == 21",
            "assert add(2, 2) == 4",
        ],
    );
    assert_eq!(
        result,
        Outcome::Failed {
            passed: 2,
            total: 3
        }
    );
    let row = simple(&[
        "assert add(1, 2) == 3",
        "assert add(20, 1) == 21",
        "assert add(2, 2) == 4",
    ]);
    let score = runner
        .verify(&Sample::new(
            "",
            &format!("Here:\n```python\n{code}```\n"),
            &row,
        ))
        .unwrap();
    assert!((score.reward - 2.0 / 3.0).abs() < 1e-6);
    assert_eq!(score.correct, Some(false));
    let strict = UnitTestRunner::new(UnitTestConfig {
        partial_credit: false,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        strict.verify(&Sample::new("", code, &row)).unwrap().reward,
        0.0
    );
    assert!(
        matches!(outcome(&runner, "def f(:\n", &["assert True"]), Outcome::CompileError(e) if e.starts_with("SyntaxError"))
    );
    assert!(
        matches!(outcome(&runner, "raise ValueError('no')", &["assert True"]), Outcome::RuntimeError(e) if e.contains("ValueError"))
    );
}

/// Processes whose command line holds `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.parse::<u32>().is_ok())
            && let Ok(cmdline) = std::fs::read(entry.path().join("cmdline"))
        {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(marker) {
                found.push(format!(
                    "{}: {cmdline}",
                    entry.file_name().to_string_lossy()
                ));
            }
        }
    }
    found
}

#[test]
fn hostile_programs_are_contained() {
    let work = tempfile::tempdir().unwrap();
    let runner = UnitTestRunner::new(UnitTestConfig {
        timeout_s: 3.0,
        memory_mb: 256,
        work_dir: Some(work.path().to_owned()),
        ..Default::default()
    })
    .unwrap();
    let ok = ["assert True"];
    // Fork bomb: the process limit stops it, the timeout ends it.
    let bomb =
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n";
    assert_eq!(outcome(&runner, bomb, &ok), Outcome::Timeout(Phase::Run));
    assert_eq!(
        outcome(&runner, "while True:\n    pass\n", &ok),
        Outcome::Timeout(Phase::Run)
    );
    assert_eq!(
        outcome(&runner, "import time\ntime.sleep(30)\n", &ok),
        Outcome::Timeout(Phase::Run)
    );
    assert_eq!(
        outcome(&runner, "x = bytearray(50 * 2**30)\n", &ok),
        Outcome::MemoryLimit
    );
    assert_eq!(
        outcome(
            &runner,
            "import sys\nblock = 'x' * 2**20\nfor _ in range(1024):\n    sys.stdout.write(block)\n",
            &ok
        ),
        Outcome::OutputLimit
    );

    // Writing outside the run's directory fails (the test asserts the write raised).
    let project = env!("CARGO_MANIFEST_DIR");
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    for target in [
        "/etc/grpo-sandbox-escape",
        &format!("{home}/grpo-sandbox-escape"),
        &format!("{project}/grpo-sandbox-escape"),
        "/tmp/grpo-sandbox-escape",
    ] {
        let code = format!(
            "def wrote():\n    try:\n        open({target:?}, 'w').write('x')\n        return True\n    except OSError:\n        return False\n"
        );
        assert_eq!(
            outcome(&runner, &code, &["assert not wrote()"]),
            Outcome::Passed { total: 1 },
            "{target}"
        );
        assert!(
            !std::path::Path::new(target).exists(),
            "{target} was written"
        );
    }
    // Reading outside the allowed set fails.
    let read_root = "import os\ndef peek():\n    try:\n        return os.listdir('/root') or ['empty']\n    except OSError:\n        return []\n";
    assert_eq!(
        outcome(&runner, read_root, &["assert peek() == []"]),
        Outcome::Passed { total: 1 }
    );

    // A TCP connection to a listener on this machine's loopback never arrives.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let connect = format!(
        "import socket\ndef reached():\n    try:\n        socket.create_connection(('127.0.0.1', {port}), timeout=1)\n        return True\n    except OSError:\n        return False\n"
    );
    assert_eq!(
        outcome(&runner, &connect, &["assert not reached()"]),
        Outcome::Passed { total: 1 }
    );
    std::thread::sleep(Duration::from_millis(100));
    assert!(listener.accept().is_err(), "the listener saw a connection");

    // A background process that tries to outlive the run is gone when it returns.
    let marker = format!("grpo-orphan-{}", std::process::id());
    let orphan = format!(
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        os.execv('/bin/sleep', ['/bin/sleep', '30', '{marker}'])\n    os._exit(0)\ntime.sleep(0.2)\n"
    );
    assert_eq!(outcome(&runner, &orphan, &ok), Outcome::Passed { total: 1 });
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        processes_with(&marker),
        Vec::<String>::new(),
        "a process outlived its run"
    );

    // Leaving before the tests, or printing a verdict, scores nothing.
    let failing = ["assert False"];
    for early in [
        "import sys\nsys.exit(0)\n",
        "import os\nos._exit(0)\n",
        "raise SystemExit(0)\n",
        "exit(0)\n",
    ] {
        let result = outcome(&runner, early, &failing);
        assert!(
            matches!(result, Outcome::RuntimeError(_)),
            "{early}: {result:?}"
        );
    }
    let forged = "print('result 1 1')\nprint('passed all tests')\nimport os\nos._exit(0)\n";
    assert!(matches!(
        outcome(&runner, forged, &failing),
        Outcome::RuntimeError(_)
    ));
    let fd3 = "import os\ntry:\n    print(os.read(3, 64))\nexcept OSError:\n    pass\n";
    assert_eq!(
        outcome(&runner, fd3, &failing),
        Outcome::Failed {
            passed: 0,
            total: 1
        }
    );

    // Nothing left behind: no run directory, no process of a run's uid.
    let leftovers: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let inside: Vec<_> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read_link(e.path().join("cwd")).is_ok_and(|cwd| cwd.starts_with(work.path()))
        })
        .map(|e| e.file_name())
        .collect();
    assert!(
        inside.is_empty(),
        "processes still running in a run directory: {inside:?}"
    );
}

#[test]
fn rust_solutions_are_compiled_and_tested() {
    let runner = runner();
    let row = row(
        json!({"language": "rust", "tests": ["assert_eq!(add(2, 3), 5)", "assert_eq!(add(-1, 1), 0)"]}),
    );
    let run = |code: &str| runner.verify(&Sample::new("", code, &row)).unwrap();
    let good = run("```rust\npub fn add(a: i32, b: i32) -> i32 { a + b }\n```");
    assert_eq!(
        (good.reward, good.correct),
        (1.0, Some(true)),
        "{}",
        good.details
    );
    let half = run("fn add(a: i32, b: i32) -> i32 { if a < 0 { 7 } else { a + b } }");
    assert_eq!(half.reward, 0.5, "{}", half.details);
    let broken = run("fn add(a: i32) -> i32 { a }");
    assert!(
        broken.details.starts_with("compile error"),
        "{}",
        broken.details
    );
    // Exiting early, or printing libtest's success line, scores nothing.
    let exits = run(
        "fn add(a: i32, b: i32) -> i32 { println!(\"test result: ok. 2 passed; 0 failed\"); std::process::exit(0) }",
    );
    assert_eq!(exits.reward, 0.0, "{}", exits.details);
}

#[test]
fn the_config_kind_and_fail_closed_requirements() {
    let set = VerifierSet::from_toml_str(
        "[[verifiers]]\nkind = \"unit_test\"\nlanguage = \"python\"\ntimeout_s = 5\nmemory_mb = 512\npartial_credit = true\nworkers = 2\nrequire = [\"netns\", \"landlock\", \"seccomp\", \"rlimits\"]\n",
        "inline",
    )
    .unwrap();
    let row = simple(&["assert f() == 1"]);
    let evaluation = set.evaluate(&Sample::new("", "def f():\n    return 1\n", &row));
    assert_eq!(evaluation.reward, Ok(1.0));
    let error = VerifierSet::from_toml_str(
        "[[verifiers]]\nkind = \"unit_test\"\nrequire = [\"firewall\"]\n",
        "V.toml",
    )
    .err()
    .unwrap()
    .to_string();
    assert!(error.contains("unknown layer `firewall`"), "{error}");
}

/// Each layer on its own does what it claims (the hostile suite above runs them all at once,
/// where one layer can hide another's absence).
#[test]
fn each_layer_works_alone() {
    use grpo_verifiers::unit_test::sandbox::{self, Exit, Jail, Layer, Limits};
    use std::ffi::OsStr;
    let available = sandbox::available();
    let dir = tempfile::tempdir().unwrap();
    let run = |layer: Layer, script: &str| {
        let jail = Jail {
            dir: dir.path(),
            read: sandbox::system_read_paths(),
            binds: Vec::new(),
        };
        let argv = [OsStr::new("/bin/sh"), OsStr::new("-c"), OsStr::new(script)];
        let out = sandbox::run(
            &argv,
            &[("PATH", OsStr::new("/usr/bin:/bin"))],
            &jail,
            &Limits::default(),
            &[layer],
            None,
            Some(sandbox::fresh_uid()),
        )
        .unwrap();
        (
            out.exit,
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        )
    };
    let python = |code: &str| format!("/usr/bin/python3 -I -S -c \"{code}\"");
    if available.has(Layer::Landlock) {
        let target = std::env::temp_dir().join(format!("grpo-landlock-{}", std::process::id()));
        let (exit, _) = run(Layer::Landlock, &format!("echo x > {}", target.display()));
        assert_ne!(exit, Exit::Code(0));
        assert!(!target.exists());
        assert_eq!(
            run(Layer::Landlock, "ls /root >/dev/null 2>&1 || echo denied").1,
            "denied"
        );
        assert_eq!(
            run(Layer::Landlock, "echo ok > inside && cat inside").1,
            "ok"
        );
    }
    if available.has(Layer::Netns) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (exit, _) = run(
            Layer::Netns,
            &python(&format!(
                "import socket; socket.create_connection(('127.0.0.1', {port}), timeout=1)"
            )),
        );
        assert_ne!(exit, Exit::Code(0));
    }
    if available.has(Layer::Seccomp) {
        let (exit, _) = run(Layer::Seccomp, &python("import socket; socket.socket()"));
        assert_ne!(exit, Exit::Code(0));
        assert_eq!(run(Layer::Seccomp, &python("print(1)")).0, Exit::Code(0));
        // Each rule of the filter, by the errno a raw system call gets (x86-64 numbers).
        #[cfg(target_arch = "x86_64")]
        {
            let probe = concat!(
                "import ctypes, os; c = ctypes.CDLL(None, use_errno=True)\n",
                "def call(nr, *a):\n",
                "    r = c.syscall(nr, *a)\n",
                "    if r == 0 and nr == 56: os._exit(0)\n",
                "    return ctypes.get_errno() if r < 0 else 0\n",
                // clone(SIGCHLD), clone(NEWUSER|SIGCHLD), clone(NEWUSER|NEWUTS|SIGCHLD),
                // clone3(NULL, 0), x32 getpid, ptrace(TRACEME).
                "print(call(56, 17), call(56, 0x10000011), call(56, 0x14000011), ",
                "call(435, 0, 0), call(0x40000027), call(101, 0, 0, 0, 0))",
            );
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("probe.py"), probe).unwrap();
            let script = format!(
                "/usr/bin/python3 -I -S {}",
                dir.path().join("probe.py").display()
            );
            // fork allowed; namespace clones EPERM; clone3 ENOSYS (the C library falls back to
            // clone); every x32 call EPERM; ptrace EPERM.
            assert_eq!(run(Layer::Seccomp, &script).1, "0 1 1 38 1 1");
        }
    }
    if available.has(Layer::Rlimits) {
        assert_ne!(
            run(Layer::Rlimits, &python("bytearray(2**31)")).0,
            Exit::Code(0)
        );
    }
    if available.has(Layer::Pidns) {
        assert_eq!(run(Layer::Pidns, "echo $$").1, "1");
    }
    if available.has(Layer::UidDrop) {
        let uid: u32 = run(Layer::UidDrop, "id -u").1.parse().unwrap();
        assert!(uid >= 1_000_000, "{uid}");
    }
}

/// An interpreter in a private home directory (pyenv under /root here) is bound into the run.
#[test]
fn an_interpreter_outside_the_system_directories_still_runs() {
    let Some(pyenv) = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("python3"))
            .find(|p| p.exists() && !p.starts_with("/usr") && !p.starts_with("/bin"))
    }) else {
        eprintln!("skipped: no python3 outside /usr on the PATH");
        return;
    };
    let runner = UnitTestRunner::new(UnitTestConfig {
        python: Some(pyenv),
        ..Default::default()
    })
    .unwrap();
    let result = runner
        .run(
            "def f():\n    return 2\n",
            Language::Python,
            &simple(&["assert f() == 2"]),
        )
        .unwrap();
    assert_eq!(result, Outcome::Passed { total: 1 });
}
