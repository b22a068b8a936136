//! TLS to PostgreSQL: libpq's `sslmode` and `sslrootcert` URL parameters,
//! which tokio-postgres does not know beyond `disable`/`prefer`/`require`,
//! over rustls (tokio-postgres-rustls; the ring provider, as the
//! dashboard's HTTPS).
//!
//! The modes are libpq's:
//!
//! | `sslmode` | encrypted | certificate checked |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` (the default) | when the server offers it | against `sslrootcert` when given, else not at all |
//! | `require` | always | against `sslrootcert` when given, else not at all |
//! | `verify-ca` | always | signed by a CA of `sslrootcert` (required) |
//! | `verify-full` | always | signed by a CA of `sslrootcert` (required) and issued for the host name or address of the URL |
//!
//! Only `verify-full` stops a machine in the middle that holds a
//! certificate of the same CA; use it whenever credentials cross a network.

use super::super::model::{StoreError, StoreResult};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::sync::Arc;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// What checks the server's certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    /// Nothing (libpq's `prefer` and `require` without a root certificate).
    Nothing,
    /// The chain up to a root of `sslrootcert`.
    Chain,
    /// The chain and the host name.
    ChainAndName,
}

/// The driver's configuration and TLS connector for `url`.
pub(super) fn connect_config(
    url: &str,
) -> StoreResult<(tokio_postgres::Config, MakeRustlsConnect)> {
    let bad = |m: String| StoreError::Tls(m);
    let (head, query) = url.split_once('?').unwrap_or((url, ""));
    // The driver's own parameters are passed on exactly as written (it
    // percent-decodes them itself; re-encoding would turn a space into `+`,
    // which it keeps literally).
    let mut rest: Vec<&str> = Vec::new();
    let (mut mode, mut root) = (None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let Some((k, v)) = form_urlencoded::parse(pair.as_bytes()).next() else {
            continue;
        };
        match k.as_ref() {
            "sslmode" => mode = Some(v.into_owned()),
            "sslrootcert" => root = Some(v.into_owned()),
            _ => rest.push(pair),
        }
    }
    let rest = rest.join("&");
    let plain = if rest.is_empty() {
        head.to_string()
    } else {
        format!("{head}?{rest}")
    };
    let mut config: tokio_postgres::Config = plain.parse()?;
    let (ssl, check) = match mode.as_deref().unwrap_or("prefer") {
        "disable" => (SslMode::Disable, Check::Nothing),
        "allow" | "prefer" => (SslMode::Prefer, Check::Nothing),
        "require" => (SslMode::Require, Check::Nothing),
        "verify-ca" => (SslMode::Require, Check::Chain),
        "verify-full" => (SslMode::Require, Check::ChainAndName),
        other => {
            return Err(bad(format!(
                "sslmode={other} is not one of disable, allow, prefer, require, verify-ca, verify-full"
            )));
        }
    };
    // As libpq: a root certificate given to `prefer`/`require` is checked.
    let check = match (check, &root) {
        (Check::Nothing, Some(_)) => Check::Chain,
        (Check::Nothing, None) => Check::Nothing,
        (_, None) => {
            return Err(bad(format!(
                "sslmode={} needs sslrootcert=FILE (the PEM certificate of the CA that signed \
                 the server's certificate)",
                mode.unwrap_or_default()
            )));
        }
        (c, Some(_)) => c,
    };
    config.ssl_mode(ssl);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?;
    // `root` is given whenever `check` is not `Nothing` (refused above).
    let verifier: Arc<dyn ServerCertVerifier> = match root {
        None => Arc::new(Unchecked(provider.signature_verification_algorithms)),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(&path)
                .map_err(|e| bad(format!("sslrootcert {path}: {e}")))?
            {
                let c = c.map_err(|e| bad(format!("sslrootcert {path}: {e}")))?;
                roots
                    .add(c)
                    .map_err(|e| bad(format!("sslrootcert {path}: {e}")))?;
            }
            if roots.is_empty() {
                return Err(bad(format!("sslrootcert {path}: no certificate in it")));
            }
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| bad(e.to_string()))?;
            match check {
                Check::ChainAndName => webpki,
                _ => Arc::new(AnyName(webpki)),
            }
        }
    };
    let tls = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok((config, MakeRustlsConnect::new(tls)))
}

/// `verify-ca`: the chain is checked, the name is not (as libpq).
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer`/`require` without a root certificate: encrypted, and the
/// handshake's signatures are checked, but not who signed the certificate
/// (libpq's behaviour; documented as open to a machine in the middle).
#[derive(Debug)]
struct Unchecked(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_modes_need_a_root_certificate_and_unknown_modes_are_refused() {
        for url in [
            "postgres://ww@db/ww?sslmode=verify-full",
            "postgres://ww@db/ww?sslmode=verify-ca",
            "postgres://ww@db/ww?sslmode=requre",
        ] {
            let err = connect_config(url).err().expect(url).to_string();
            assert!(err.contains("sslmode="), "{url}: {err}");
        }
        let err =
            connect_config("postgres://ww@db/ww?sslmode=verify-full&sslrootcert=/nonexistent")
                .err()
                .unwrap()
                .to_string();
        assert!(err.contains("/nonexistent"), "{err}");
    }

    #[test]
    fn libpq_parameters_are_taken_out_and_the_rest_kept() {
        let (c, _) =
            connect_config("postgres://ww@db:5433/ww?sslmode=require&application_name=x%20y")
                .unwrap();
        assert_eq!(c.get_ssl_mode(), SslMode::Require);
        assert_eq!(c.get_application_name(), Some("x y"));
        assert_eq!(c.get_ports(), &[5433]);
        let (c, _) = connect_config("postgres://ww@db/ww").unwrap();
        assert_eq!(c.get_ssl_mode(), SslMode::Prefer);
        let (c, _) = connect_config("postgres://ww@db/ww?sslmode=disable").unwrap();
        assert_eq!(c.get_ssl_mode(), SslMode::Disable);
    }
}
