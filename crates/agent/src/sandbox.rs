//! The agent's sandbox: the one folder whose files get-file, scan, upload,
//! execute and runscript may touch. Every path an action names is resolved
//! inside it, and one that leads out (absolute elsewhere, `..`, or a symlink
//! pointing out) is refused.

use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

/// A folder, created on first use (a swarm of 10,000 agents creates only
/// the folders its actions need).
#[derive(Debug)]
pub struct Sandbox {
    configured: PathBuf,
    root: OnceLock<PathBuf>,
}

impl Sandbox {
    pub fn new(root: PathBuf) -> Sandbox {
        Sandbox { configured: root, root: OnceLock::new() }
    }

    /// The folder, created if missing, as its canonical path.
    pub fn root(&self) -> Result<&Path, String> {
        if let Some(root) = self.root.get() {
            return Ok(root);
        }
        std::fs::create_dir_all(&self.configured).map_err(|e| format!("Cannot create the sandbox {}: {e}", self.configured.display()))?;
        let canonical = self.configured.canonicalize().map_err(|e| format!("Cannot open the sandbox {}: {e}", self.configured.display()))?;
        Ok(self.root.get_or_init(|| canonical))
    }

    /// `path` (relative to the sandbox, or absolute inside it) as a path in
    /// the sandbox, or the error "Path <p> is outside the agent's sandbox".
    /// The path need not exist; the deepest part of it that exists is
    /// canonicalized, so a symlink cannot lead out.
    pub fn resolve(&self, path: &str) -> Result<PathBuf, String> {
        let root = self.root()?;
        let outside = || format!("Path {path} is outside the agent's sandbox");
        let given = Path::new(path);
        let joined = if given.is_absolute() { given.to_path_buf() } else { root.join(given) };
        let normal = normalize(&joined).ok_or_else(outside)?;
        if !normal.starts_with(root) {
            return Err(outside());
        }
        // Follow symlinks in the part that exists.
        let mut existing = normal.as_path();
        let mut rest = Vec::new();
        while std::fs::symlink_metadata(existing).is_err() {
            let (Some(parent), Some(name)) = (existing.parent(), existing.file_name()) else {
                return Err(outside());
            };
            rest.push(name.to_owned());
            existing = parent;
        }
        let mut real = existing.canonicalize().map_err(|e| format!("Cannot read {path}: {e}"))?;
        if !real.starts_with(root) {
            return Err(outside());
        }
        for name in rest.into_iter().rev() {
            real.push(name);
        }
        Ok(real)
    }

    /// A file name for the sandbox's top folder: no folders, no `..`.
    pub fn file_name<'a>(&self, name: &'a str) -> Result<&'a str, String> {
        let mut components = Path::new(name).components();
        match (components.next(), components.next()) {
            (Some(Component::Normal(_)), None) => Ok(name),
            _ => Err(format!("Path {name} is outside the agent's sandbox")),
        }
    }
}

/// `path` with `.` and `..` worked out lexically; `None` if `..` climbs
/// above the filesystem's root.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                if !out.pop() || out.as_os_str().is_empty() {
                    return None;
                }
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_sandbox() {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = Sandbox::new(dir.path().join("box"));
        let root = sandbox.root().unwrap().to_path_buf();
        std::fs::create_dir_all(root.join("logs")).unwrap();
        std::fs::write(root.join("logs/a.txt"), "a").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "s").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("link")).unwrap();
        std::os::unix::fs::symlink(dir.path(), root.join("dirlink")).unwrap();

        for (path, expected) in [
            ("logs/a.txt", Some(root.join("logs/a.txt"))),
            ("./logs/../logs/a.txt", Some(root.join("logs/a.txt"))),
            ("new/file.txt", Some(root.join("new/file.txt"))),
            (root.join("logs").to_str().unwrap(), Some(root.join("logs"))),
            ("", Some(root.clone())),
        ] {
            assert_eq!(sandbox.resolve(path).ok(), expected, "{path}");
        }
        let secret = dir.path().join("secret.txt");
        for path in [
            "../secret.txt",
            "logs/../../secret.txt",
            "/etc/passwd",
            secret.to_str().unwrap(),
            "link",
            "dirlink/secret.txt",
            "dirlink/new",
            "/",
            "/..",
        ] {
            assert_eq!(sandbox.resolve(path), Err(format!("Path {path} is outside the agent's sandbox")), "{path}");
        }
    }

    #[test]
    fn file_names_have_no_folders() {
        let sandbox = Sandbox::new(PathBuf::from("unused"));
        assert_eq!(sandbox.file_name("a.txt"), Ok("a.txt"));
        for name in ["../a", "a/b", "/a", "..", ".", ""] {
            assert!(sandbox.file_name(name).is_err(), "{name}");
        }
    }
}
