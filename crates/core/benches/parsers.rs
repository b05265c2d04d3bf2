//! ns per parse of the two parsers that see untrusted input on every connect / refresh:
//! the redirect (callback) URL and the token endpoint's answer.
//!
//! `cargo bench -p authdeck-core --bench parsers` (scripts/bench.sh reads the means from
//! target/criterion/).

use std::hint::black_box;

use authdeck_core::authorize::parse_callback;
use authdeck_core::model::Provider;
use authdeck_core::providers::parse_token_response;
use criterion::{criterion_group, criterion_main, Criterion};

const CALLBACK: &str = "com.authdeck.desktop:/oauth/callback?code=9b1c0f6e2d7a4c3b8e5f1a2d3c4b5a6f7e8d9c0b1a2f3e4d5c6b7a8f9e0d1c2b&scope=openid%20profile%20flowaccount-api%20offline_access&state=Jx3u0q9Qv5m2N8rT1yW4zB7cE6fH0kL2pS5dG8jA1vX";

const FLOWACCOUNT_BODY: &str = r#"{"access_token":"eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJkZW1vIiwiZXhwIjo0MTAyNDQ0ODAwfQ.c2lnbmF0dXJl","expires_in":3600,"token_type":"Bearer","refresh_token":"8f1d2e3c4b5a69788796a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4","scope":"openid profile flowaccount-api offline_access","supportCode":"FA-100001"}"#;

fn parsers(c: &mut Criterion) {
    c.bench_function("parse_callback", |b| {
        b.iter(|| parse_callback(black_box(CALLBACK)).is_ok())
    });
    let now = chrono::Utc::now();
    c.bench_function("parse_token_response", |b| {
        b.iter(|| {
            parse_token_response(
                Provider::FlowAccount,
                200,
                black_box(FLOWACCOUNT_BODY.as_bytes()),
                now,
            )
            .is_ok()
        })
    });
}

criterion_group!(benches, parsers);
criterion_main!(benches);
