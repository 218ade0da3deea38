//! execute and runscript: a command line split into words as a shell would,
//! but run without a shell, from an allow-list, in the sandbox, with a clean
//! environment, a timeout, and its output captured up to a cap.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::processes::Processes;
use crate::sandbox::Sandbox;

/// The only environment a child gets.
pub const SEARCH_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How much of stdout and of stderr an output keeps.
pub const OUTPUT_CAP: usize = 20_000;

/// The programs execute may run: read-only, local tools. None of them talks
/// to the network, which is why isolation has nothing to block here.
pub const ALLOWED_PROGRAMS: &[&str] = &[
    "cat", "date", "echo", "false", "find", "grep", "head", "hostname", "id", "ls", "printf", "pwd", "sleep", "tail", "true", "uname", "wc", "whoami",
];

/// Arguments refused because they would change the host or run another
/// program (`find -exec`, `date -s`).
fn refused_argument(program: &str, arg: &str) -> bool {
    match program {
        "find" => arg.starts_with("-exec") || arg.starts_with("-ok") || arg == "-delete" || arg.starts_with("-fprint") || arg == "-fls",
        "date" => arg == "-s" || arg.starts_with("--set") || (arg.starts_with("-s") && !arg.starts_with("--")),
        _ => false,
    }
}

/// Splits a command line into words like a POSIX shell: blanks separate,
/// single quotes keep everything, double quotes keep all but `\` before
/// `"`, `\`, `$` and `` ` ``, and a backslash outside quotes keeps the next
/// character. No expansion of any kind.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') => {}
                    Some(next) => word.push(next),
                    None => return Err("The command ends with a lone backslash".into()),
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(inner) => word.push(inner),
                        None => return Err("The command has an unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(next @ ('"' | '\\' | '$' | '`')) => word.push(next),
                            Some('\n') => {}
                            Some(next) => {
                                word.push('\\');
                                word.push(next);
                            }
                            None => return Err("The command has an unterminated double quote".into()),
                        },
                        Some(inner) => word.push(inner),
                        None => return Err("The command has an unterminated double quote".into()),
                    }
                }
            }
            other => {
                in_word = true;
                word.push(other);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// The program and arguments of an execute command line, once the program
/// is allowed and no argument names a path outside the sandbox. Arguments
/// that look like paths (absolute, with `..`, or naming something that
/// exists in the sandbox, a symlink perhaps) must resolve inside it; so must
/// the value of an `--option=value`.
pub fn plan_execute(line: &str, sandbox: &Sandbox) -> Result<Vec<String>, String> {
    let words = split_words(line)?;
    let Some(program) = words.first() else {
        return Err("The command is empty".into());
    };
    if !ALLOWED_PROGRAMS.contains(&program.as_str()) {
        return Err(format!("The command {program} is not allowed on this agent (allowed: {})", ALLOWED_PROGRAMS.join(", ")));
    }
    if program == "hostname" && words.len() > 1 {
        return Err("hostname may not be given arguments (it would rename the host)".into());
    }
    let root = sandbox.root()?;
    for arg in words.iter().skip(1) {
        if refused_argument(program, arg) {
            return Err(format!("The argument {arg} is not allowed for {program}"));
        }
        let candidate = match arg.split_once('=') {
            Some((option, value)) if option.starts_with('-') => value,
            _ if arg.starts_with('-') => continue,
            _ => arg.as_str(),
        };
        let looks_like_path = candidate.starts_with('/')
            || Path::new(candidate).components().any(|c| c == std::path::Component::ParentDir)
            || (!candidate.is_empty() && std::fs::symlink_metadata(root.join(candidate)).is_ok());
        if looks_like_path {
            sandbox.resolve(candidate)?;
        }
    }
    Ok(words)
}

/// One stream, capped.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Captured {
    pub text: String,
    pub truncated: bool,
}

/// Reads `stream` to its end (so the child never blocks on a full pipe),
/// keeping the first `cap` bytes.
pub async fn capture(mut stream: impl AsyncRead + Unpin, cap: usize) -> Captured {
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut buffer = [0u8; 8192];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                let chunk = buffer.get(..n).unwrap_or_default();
                if n > room {
                    truncated = true;
                }
                kept.extend_from_slice(chunk.get(..room.min(n)).unwrap_or_default());
            }
        }
    }
    Captured { text: String::from_utf8_lossy(&kept).into_owned(), truncated }
}

/// How a child ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub stdout: Captured,
    pub stderr: Captured,
    /// Its exit code, or 128 + the signal that ended it.
    pub shell_code: i32,
    pub timed_out: bool,
}

/// Runs `program args` in `cwd` with only PATH set, registered with
/// `processes` while it runs, and killed after `timeout` (or when this
/// future is dropped: a cancelled action takes its child with it).
pub async fn run(program: &str, args: &[String], cwd: &Path, timeout: Duration, processes: &Processes) -> Result<Finished, String> {
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", SEARCH_PATH)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("Cannot run {program}: {e}"))?;
    let command_line = std::iter::once(program).chain(args.iter().map(String::as_str)).collect::<Vec<_>>().join(" ");
    let _registration = child.id().map(|pid| processes.register(pid, command_line));
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let outputs = async {
        let out = async {
            match stdout {
                Some(s) => capture(s, OUTPUT_CAP).await,
                None => Captured::default(),
            }
        };
        let err = async {
            match stderr {
                Some(s) => capture(s, OUTPUT_CAP).await,
                None => Captured::default(),
            }
        };
        tokio::join!(out, err)
    };
    let waited = tokio::time::timeout(timeout, async {
        let ((stdout, stderr), status) = tokio::join!(outputs, child.wait());
        (stdout, stderr, status)
    })
    .await;
    match waited {
        Ok((stdout, stderr, status)) => {
            let status = status.map_err(|e| format!("Cannot wait for {program}: {e}"))?;
            Ok(Finished { stdout, stderr, shell_code: exit_code(status), timed_out: false })
        }
        Err(_) => {
            let _ = child.kill().await;
            Ok(Finished { stdout: Captured::default(), stderr: Captured::default(), shell_code: 137, timed_out: true })
        }
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(-1)
}

/// The output of execute (`shell: "none"`: no shell ran it).
pub fn execute_output(finished: &Finished, cwd: &Path) -> Value {
    json!({
        "code": "ra_execute_success_done",
        "stdout": finished.stdout.text,
        "stderr": finished.stderr.text,
        "stdout_truncated": finished.stdout.truncated,
        "stderr_truncated": finished.stderr.truncated,
        "shell_code": finished.shell_code,
        "shell": "none",
        "cwd": cwd.display().to_string(),
        "output_file_id": null,
        "output_file_stdout_truncated": false,
        "output_file_stderr_truncated": false,
    })
}

/// The output of runscript.
pub fn runscript_output(finished: &Finished) -> Value {
    json!({
        "code": "ra_runscript_success_done",
        "stdout": finished.stdout.text,
        "stderr": finished.stderr.text,
        "stdout_truncated": finished.stdout.truncated,
        "stderr_truncated": finished.stderr.truncated,
        "shell_code": finished.shell_code,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_as_a_shell_would() {
        for (line, expected) in [
            ("echo hi there", vec!["echo", "hi", "there"]),
            ("  echo   a\tb  ", vec!["echo", "a", "b"]),
            ("echo 'a  b' \"c d\"", vec!["echo", "a  b", "c d"]),
            (r"echo a\ b", vec!["echo", "a b"]),
            (r#"echo "a \"q\" \$x \n""#, vec!["echo", r#"a "q" $x \n"#]),
            (r"echo 'no \escape'", vec!["echo", r"no \escape"]),
            ("echo ''", vec!["echo", ""]),
            ("echo a'b'\"c\"d", vec!["echo", "abcd"]),
            ("echo $HOME `id` ; ls | wc", vec!["echo", "$HOME", "`id`", ";", "ls", "|", "wc"]),
            ("", vec![]),
        ] {
            assert_eq!(split_words(line), Ok(expected.into_iter().map(String::from).collect::<Vec<_>>()), "{line}");
        }
        for line in ["echo 'open", "echo \"open", "echo \\"] {
            assert!(split_words(line).is_err(), "{line}");
        }
    }

    #[test]
    fn only_allowed_programs_on_sandboxed_paths() {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = Sandbox::new(dir.path().join("box"));
        let root = sandbox.root().unwrap().to_path_buf();
        std::fs::write(root.join("notes.txt"), "x").unwrap();
        std::os::unix::fs::symlink("/etc/hostname", root.join("escape")).unwrap();
        for line in ["ls -la", "cat notes.txt", "grep -r x .", "wc --files0-from=notes.txt", "find . -name '*.txt'", "echo hello world"] {
            assert_eq!(plan_execute(line, &sandbox).map(|w| w.join(" ")), Ok(line.replace('\'', "")), "{line}");
        }
        for (line, error) in [
            ("curl http://x", "The command curl is not allowed on this agent"),
            ("/bin/cat notes.txt", "The command /bin/cat is not allowed"),
            ("sh -c id", "The command sh is not allowed"),
            ("env", "The command env is not allowed"),
            ("cat /etc/passwd", "Path /etc/passwd is outside the agent's sandbox"),
            ("cat ../../x", "Path ../../x is outside the agent's sandbox"),
            ("cat escape", "Path escape is outside the agent's sandbox"),
            ("grep --file=/etc/shadow x", "Path /etc/shadow is outside the agent's sandbox"),
            ("find . -exec rm {} ;", "The argument -exec is not allowed for find"),
            ("date -s 2020-01-01", "The argument -s is not allowed for date"),
            ("hostname evil", "hostname may not be given arguments"),
            // Conservative: an absolute path is checked even where it is only text.
            ("echo /etc/passwd", "Path /etc/passwd is outside the agent's sandbox"),
            ("", "The command is empty"),
        ] {
            let message = plan_execute(line, &sandbox).unwrap_err();
            assert!(message.starts_with(error), "{line}: {message}");
        }
    }

    #[tokio::test]
    async fn output_is_capped_and_flagged() {
        let big = vec![b'a'; OUTPUT_CAP + 5];
        let captured = capture(big.as_slice(), OUTPUT_CAP).await;
        assert!(captured.truncated);
        assert_eq!(captured.text.len(), OUTPUT_CAP);
        let exact = vec![b'a'; OUTPUT_CAP];
        let captured = capture(exact.as_slice(), OUTPUT_CAP).await;
        assert!(!captured.truncated);
        assert_eq!(captured.text.len(), OUTPUT_CAP);
    }

    #[tokio::test]
    async fn runs_without_a_shell_and_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let processes = Processes::new("a");
        let args = vec!["$HOME".to_owned(), "a;b".to_owned()];
        let done = run("echo", &args, dir.path(), Duration::from_secs(10), &processes).await.unwrap();
        assert_eq!(done.stdout.text, "$HOME a;b\n");
        assert_eq!(done.shell_code, 0);
        let done = run("ls", &["missing".to_owned()], dir.path(), Duration::from_secs(10), &processes).await.unwrap();
        assert_ne!(done.shell_code, 0);
        assert!(!done.stderr.text.is_empty());
        let done = run("sleep", &["30".to_owned()], dir.path(), Duration::from_millis(50), &processes).await.unwrap();
        assert!(done.timed_out);
        assert!(processes.list().is_empty());
    }
}
