//! The pure parts of file transfer: hashes, get-file's passcode-locked zip,
//! and Fleet Server's upload chunking and transit hash.

use std::io::Write;

use sha2::{Digest, Sha256};
use zip::unstable::write::FileOptionsExt;
use zip::write::SimpleFileOptions;

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A zip holding one file, `name`, locked with `passcode` (ZipCrypto, which
/// Endpoint's zips use and every unzip tool reads). Entries are stored, not
/// compressed.
pub fn zip_one(name: &str, contents: &[u8], passcode: &str) -> Result<Vec<u8>, String> {
    let failed = |e: zip::result::ZipError| format!("Cannot make the zip: {e}");
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .with_deprecated_encryption(passcode.as_bytes())
        .map_err(failed)?;
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    writer.start_file(name, options).map_err(failed)?;
    writer.write_all(contents).map_err(|e| format!("Cannot make the zip: {e}"))?;
    Ok(writer.finish().map_err(failed)?.into_inner())
}

/// The chunks of an upload, each `chunk_size` bytes but the last, with the
/// hex SHA-256 that goes in its `X-Chunk-SHA2` header.
pub fn chunks(bytes: &[u8], chunk_size: usize) -> Vec<(&[u8], String)> {
    bytes.chunks(chunk_size.max(1)).map(|chunk| (chunk, sha256_hex(chunk))).collect()
}

/// Fleet Server's transit hash: SHA-256 over the raw 32-byte digests of the
/// chunks, concatenated in order, as hex.
pub fn transit_hash<'a>(chunk_digests: impl IntoIterator<Item = &'a str>) -> Result<String, String> {
    let mut hasher = Sha256::new();
    for digest in chunk_digests {
        hasher.update(hex::decode(digest).map_err(|e| format!("Bad chunk digest {digest}: {e}"))?);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn the_zip_opens_with_the_passcode_only() {
        let contents = b"line one\nline two\n".repeat(100);
        let zip = zip_one("notes.txt", &contents, "elastic").unwrap();
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip.clone())).unwrap();
        assert_eq!(archive.len(), 1);
        let mut read = Vec::new();
        archive.by_name_decrypt("notes.txt", b"elastic").unwrap().read_to_end(&mut read).unwrap();
        assert_eq!(read, contents);
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
        assert!(archive.by_name_decrypt("notes.txt", b"wrong").is_err());
        assert!(archive.by_name("notes.txt").is_err());
    }

    #[test]
    fn chunks_and_transit_hash() {
        let bytes: Vec<u8> = (0..10u8).collect();
        let parts = chunks(&bytes, 4);
        assert_eq!(parts.iter().map(|(c, _)| c.len()).collect::<Vec<_>>(), vec![4, 4, 2]);
        assert_eq!(parts[0].1, sha256_hex(&[0, 1, 2, 3]));
        // Over the raw digests, not over their hex text nor over the data.
        let mut raw = Vec::new();
        for (chunk, _) in &parts {
            raw.extend_from_slice(&Sha256::digest(chunk));
        }
        let expected = sha256_hex(&raw);
        assert_eq!(transit_hash(parts.iter().map(|(_, d)| d.as_str())).unwrap(), expected);
        assert_ne!(expected, sha256_hex(&bytes));
        // One chunk: the hash of its digest.
        assert_eq!(transit_hash([sha256_hex(b"abc").as_str()]).unwrap(), sha256_hex(&Sha256::digest(b"abc")));
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
