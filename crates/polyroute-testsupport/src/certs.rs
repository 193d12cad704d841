//! A test CA and a server certificate signed by it, made with the `openssl` command in a directory.

use std::path::{Path, PathBuf};
use std::process::Command;

/// PEM files in a directory: the CA's certificate, and a leaf certificate with its key.
#[derive(Debug, Clone)]
pub struct TestCerts {
    /// The CA certificate (the root a client trusts).
    pub ca: PathBuf,
    /// The server's certificate, signed by the CA.
    pub cert: PathBuf,
    /// The server's private key (unencrypted).
    pub key: PathBuf,
}

impl TestCerts {
    /// Make a CA and a certificate for `san` (an OpenSSL `subjectAltName` value, e.g. `IP:127.0.0.1` or
    /// `DNS:localhost`), valid one day, usable by servers and (for cluster buses) clients; `None` when the
    /// `openssl` command is missing or fails.
    #[must_use]
    pub fn make(dir: &Path, san: &str) -> Option<Self> {
        let d = |f: &str| dir.join(f).to_string_lossy().into_owned();
        let (ca, ca_key, cert, key, csr, ext) = (
            d("ca.pem"),
            d("ca.key"),
            d("cert.pem"),
            d("key.pem"),
            d("leaf.csr"),
            d("ext.cnf"),
        );
        std::fs::write(
            &ext,
            format!(
                "subjectAltName={san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n"
            ),
        )
        .ok()?;
        let steps: [Vec<&str>; 3] = [
            vec![
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=polyroute test ca",
                "-keyout",
                &ca_key,
                "-out",
                &ca,
            ],
            vec![
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=polyroute test server",
                "-keyout",
                &key,
                "-out",
                &csr,
            ],
            vec![
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-days",
                "1",
                "-extfile",
                &ext,
                "-out",
                &cert,
            ],
        ];
        for args in &steps {
            let ok = Command::new("openssl")
                .args(args)
                .output()
                .is_ok_and(|o| o.status.success());
            if !ok {
                return None;
            }
        }
        Some(Self {
            ca: ca.into(),
            cert: cert.into(),
            key: key.into(),
        })
    }
}
