//! Writes an RS256 and an ES256 public key and a long-lived valid token for
//! each into DIR, for load runs (`JWT=1 bench/run.sh`).
//! Usage: cargo run --release -p warden-testkit --example mint_tokens -- DIR

#![allow(clippy::unwrap_used, clippy::expect_used)]

use warden_testkit::jwt::TestIssuer;

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("usage: mint_tokens DIR"));
    std::fs::create_dir_all(&dir).unwrap();
    let iss = TestIssuer::new();
    let mut claims = iss.claims();
    claims["exp"] = serde_json::json!(warden_testkit::jwt::now() + 86_400);
    std::fs::copy(&iss.rsa.public_file, dir.join("rsa.pub.pem")).unwrap();
    std::fs::copy(&iss.ec.public_file, dir.join("ec.pub.pem")).unwrap();
    std::fs::write(dir.join("rs256.jwt"), iss.rs256(&claims)).unwrap();
    std::fs::write(dir.join("es256.jwt"), iss.es256(&claims)).unwrap();
    println!(
        "issuer {} audience {}",
        warden_testkit::jwt::ISSUER,
        warden_testkit::jwt::AUDIENCE
    );
}
