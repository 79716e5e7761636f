use std::time::Duration;

use crate::smtp::filters::{
    ClamdConfig, Endpoint, OnError, ProtocolError, ScanResult, SpamReport, SpamdConfig,
    VirusAction, parse_clamd_reply, parse_spamd_reply, spam_verdict, spamd_request_head,
    virus_verdict,
};
use crate::smtp::verdict::Action;

#[track_caller]
fn check_spamd(reply: &str, expected: Result<(bool, f64, f64, &[&str]), ProtocolError>) {
    let parsed = parse_spamd_reply(reply.as_bytes());
    let expected = expected.map(|(is_spam, score, threshold, symbols)| SpamReport {
        is_spam,
        score,
        threshold,
        symbols: symbols.iter().map(|s| s.to_string()).collect(),
    });
    assert_eq!(parsed, expected, "reply {reply:?}");
}

#[test]
fn spamd_symbols_reply() {
    check_spamd(
        "SPAMD/1.1 0 EX_OK\r\nContent-length: 17\r\nSpam: True ; 1000.0 / 5.0\r\n\r\nGTUBE,MISSING_DATE",
        Ok((true, 1000.0, 5.0, &["GTUBE", "MISSING_DATE"])),
    );
}

#[test]
fn spamd_check_reply_without_body() {
    check_spamd(
        "SPAMD/1.1 0 EX_OK\r\nSpam: False ; -0.3 / 5.0\r\n\r\n",
        Ok((false, -0.3, 5.0, &[])),
    );
    check_spamd(
        "SPAMD/1.5 0 EX_OK\r\nspam: yes; 7.3/5.0",
        Ok((true, 7.3, 5.0, &[])),
    );
}

#[test]
fn spamd_error_status() {
    check_spamd(
        "SPAMD/1.0 76 Bad header line: (EOF)\r\n",
        Err(ProtocolError::SpamdStatus {
            code: 76,
            message: "Bad header line: (EOF)".into(),
        }),
    );
}

#[test]
fn spamd_malformed_replies() {
    let malformed = |why| Err(ProtocolError::Malformed(why));
    check_spamd("", malformed("status line is not SPAMD/x.y"));
    check_spamd(
        "HTTP/1.1 200 OK\r\n\r\n",
        malformed("status line is not SPAMD/x.y"),
    );
    check_spamd("SPAMD/1.1 x EX_OK\r\n", malformed("no status code"));
    check_spamd("SPAMD/1.1 0 EX_OK\r\n\r\n", malformed("no Spam header"));
    check_spamd(
        "SPAMD/1.1 0 EX_OK\r\nSpam True ; 1 / 5\r\n\r\n",
        malformed("header without a colon"),
    );
    check_spamd(
        "SPAMD/1.1 0 EX_OK\r\nSpam: Maybe ; 1 / 5\r\n\r\n",
        malformed("Spam header is not True or False"),
    );
    check_spamd(
        "SPAMD/1.1 0 EX_OK\r\nSpam: True 1 / 5\r\n\r\n",
        malformed("Spam header without ';'"),
    );
    check_spamd(
        "SPAMD/1.1 0 EX_OK\r\nSpam: True ; 1 5\r\n\r\n",
        malformed("Spam header without '/'"),
    );
    check_spamd(
        "SPAMD/1.1 0 EX_OK\r\nSpam: True ; NaN / 5\r\n\r\n",
        malformed("Spam header score is not a number"),
    );
    check_spamd(
        "SPAMD/1.1 0 EX_OK\r\nSpam: True ; 1 / 5\r\n\r\nA,B\r\nX-Injected: yes",
        malformed("symbol is not a rule name"),
    );
    assert_eq!(
        parse_spamd_reply(b"SPAMD/1.1 0 EX_OK\r\nSpam: True ; 1 / 5\xff\r\n\r\n"),
        Err(ProtocolError::Malformed("not UTF-8"))
    );
}

#[test]
fn spamd_request_names_length_and_user() {
    assert_eq!(
        spamd_request_head(42, "mail"),
        b"SYMBOLS SPAMC/1.5\r\nContent-length: 42\r\nUser: mail\r\n\r\n"
    );
    assert_eq!(
        spamd_request_head(0, ""),
        b"SYMBOLS SPAMC/1.5\r\nContent-length: 0\r\n\r\n"
    );
}

#[track_caller]
fn check_clamd(reply: &[u8], expected: Result<ScanResult, ProtocolError>) {
    assert_eq!(parse_clamd_reply(reply), expected, "reply {reply:?}");
}

#[test]
fn clamd_replies() {
    check_clamd(b"stream: OK\0", Ok(ScanResult::Clean));
    check_clamd(b"stream: OK\n", Ok(ScanResult::Clean));
    check_clamd(
        b"stream: Eicar-Test-Signature FOUND\0",
        Ok(ScanResult::Found("Eicar-Test-Signature".into())),
    );
    check_clamd(
        b"INSTREAM size limit exceeded. ERROR\0",
        Err(ProtocolError::ClamdError(
            "INSTREAM size limit exceeded.".into(),
        )),
    );
}

#[test]
fn clamd_malformed_replies() {
    let malformed = |why| Err(ProtocolError::Malformed(why));
    check_clamd(b"", malformed("reply does not start with 'stream:'"));
    check_clamd(b"PONG\0", malformed("reply does not start with 'stream:'"));
    check_clamd(b"stream: \0", malformed("neither OK, FOUND nor ERROR"));
    check_clamd(
        b"stream:  FOUND\0",
        malformed("neither OK, FOUND nor ERROR"),
    );
    check_clamd(
        b"stream: Bad Name FOUND\0",
        malformed("neither OK, FOUND nor ERROR"),
    );
    check_clamd(b"stream: OK\xff\0", malformed("not UTF-8"));
    check_clamd(b"stream: \xff FOUND\0", malformed("not UTF-8"));
}

fn spamd_config(tag: Option<f64>, junk: Option<f64>, reject: Option<f64>) -> SpamdConfig {
    SpamdConfig {
        endpoint: "127.0.0.1:783".parse().unwrap(),
        timeout: Duration::from_secs(5),
        on_error: OnError::Accept,
        tag_score: tag,
        junk_score: junk,
        reject_score: reject,
        subject_tag: "[SPAM] ".into(),
        max_bytes: 500_000,
        scan_authenticated: false,
        user: String::new(),
    }
}

#[track_caller]
fn check_spam_bands(config: &SpamdConfig, score: f64, action: Action, tagged: bool) {
    let report = SpamReport {
        is_spam: false,
        score,
        threshold: 5.0,
        symbols: vec!["SOME_RULE".into()],
    };
    let verdict = spam_verdict(config, &report);
    assert_eq!(verdict.action, action, "score {score}");
    assert_eq!(
        verdict.headers.iter().any(|h| h == "X-Spam-Flag: YES"),
        tagged,
        "score {score}"
    );
    assert_eq!(verdict.subject_tag.is_some(), tagged, "score {score}");
    assert!(
        verdict.headers[0].starts_with(if tagged || action != Action::Accept {
            "X-Spam-Status: Yes"
        } else {
            "X-Spam-Status: No"
        }),
        "{:?}",
        verdict.headers
    );
}

#[test]
fn spam_bands_apply_from_their_score_up() {
    let config = spamd_config(Some(5.0), Some(8.0), Some(15.0));
    check_spam_bands(&config, 4.9, Action::Accept, false);
    check_spam_bands(&config, 5.0, Action::Accept, true);
    check_spam_bands(&config, 8.0, Action::Junk, true);
    let reject = Action::Reject(crate::smtp::reply::SPAM.clone());
    check_spam_bands(&config, 1000.0, reject.clone(), true);
    // Bands that are off do nothing.
    let only_junk = spamd_config(None, Some(8.0), None);
    check_spam_bands(&only_junk, 1000.0, Action::Junk, false);
    let nothing = spamd_config(None, None, None);
    check_spam_bands(&nothing, 1000.0, Action::Accept, false);
}

#[test]
fn spam_status_header_names_score_required_and_tests() {
    let config = spamd_config(Some(5.0), None, None);
    let report = SpamReport {
        is_spam: true,
        score: 1000.0,
        threshold: 5.0,
        symbols: vec!["GTUBE".into(), "NO_RECEIVED".into()],
    };
    let verdict = spam_verdict(&config, &report);
    assert_eq!(
        verdict.headers,
        [
            "X-Spam-Status: Yes, score=1000.0 required=5.0 tests=GTUBE,NO_RECEIVED",
            "X-Spam-Score: 1000.0",
            "X-Spam-Flag: YES"
        ]
    );
}

#[test]
fn virus_found_rejects_or_junks() {
    let mut config = ClamdConfig {
        endpoint: "/run/clamav/clamd.ctl".parse().unwrap(),
        timeout: Duration::from_secs(5),
        on_error: OnError::TempFail,
        action: VirusAction::Reject,
    };
    let found = ScanResult::Found("Test-Sig".into());
    assert_eq!(
        virus_verdict(&config, &found)
            .refusal()
            .map(ToString::to_string),
        Some("554 5.7.1 Message rejected: virus found (Test-Sig)".into())
    );
    config.action = VirusAction::Junk;
    let verdict = virus_verdict(&config, &found);
    assert_eq!(verdict.action, Action::Junk);
    assert_eq!(
        verdict.headers,
        ["X-Virus-Scanned: clamd, infected (Test-Sig)"]
    );
    assert_eq!(
        virus_verdict(&config, &ScanResult::Clean).action,
        Action::Accept
    );
}

#[test]
fn endpoints() {
    assert_eq!(
        "127.0.0.1:783".parse::<Endpoint>(),
        Ok(Endpoint::Tcp("127.0.0.1:783".into()))
    );
    assert_eq!(
        "spamd.internal:783".parse::<Endpoint>(),
        Ok(Endpoint::Tcp("spamd.internal:783".into()))
    );
    assert_eq!(
        "/run/clamav/clamd.ctl".parse::<Endpoint>(),
        Ok(Endpoint::Unix("/run/clamav/clamd.ctl".into()))
    );
    for bad in [
        "",
        "localhost",
        ":783",
        "host:0",
        "host:99999",
        "run/clamd.ctl",
    ] {
        assert!(bad.parse::<Endpoint>().is_err(), "{bad:?}");
    }
}

/// Both scanners unusable: spamd accepts and never answers (the timeout ends the wait, in
/// 200 ms), clamd's port refuses. Each fails as configured and counts an error.
#[tokio::test]
async fn unusable_scanners_fail_open_or_closed() {
    use std::sync::atomic::Ordering;

    use crate::smtp::filters::{FilterMetrics, Filters, check};

    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refused_addr = refused.local_addr().unwrap();
    drop(refused);
    let mut spamd = spamd_config(Some(5.0), None, None);
    spamd.endpoint = Endpoint::Tcp(hung.local_addr().unwrap().to_string());
    spamd.timeout = Duration::from_millis(200);
    let clamd = ClamdConfig {
        endpoint: Endpoint::Tcp(refused_addr.to_string()),
        timeout: Duration::from_secs(5),
        on_error: OnError::Accept,
        action: VirusAction::Reject,
    };
    let metrics = FilterMetrics::default();
    let message = b"Subject: hi\r\n\r\nhello\r\n";
    let filters = Filters {
        spamd: Some(spamd.clone()),
        clamd: Some(clamd.clone()),
    };
    let verdict = check(&filters, &metrics, message, false, false, "Q1").await;
    assert_eq!(
        verdict.headers,
        [
            "X-Virus-Scanned: not scanned (scanner unavailable)",
            "X-Spam-Status: not scanned (scanner unavailable)"
        ]
    );
    assert_eq!(verdict.action, Action::Accept);

    spamd.on_error = OnError::TempFail;
    let filters = Filters {
        spamd: Some(spamd),
        clamd: Some(clamd),
    };
    let verdict = check(&filters, &metrics, message, false, false, "Q2").await;
    assert_eq!(
        verdict.refusal().map(ToString::to_string),
        Some("451 4.7.1 Content scanner unavailable, try again later".into())
    );
    // An authenticated sender skips the spam scorer, not the virus scanner.
    let verdict = check(&filters, &metrics, message, true, false, "Q3").await;
    assert_eq!(verdict.action, Action::Accept);
    assert_eq!(
        verdict.headers,
        ["X-Virus-Scanned: not scanned (scanner unavailable)"]
    );
    assert_eq!(metrics.errors.load(Ordering::Relaxed), 5);
    assert_eq!(metrics.spam_scanned.load(Ordering::Relaxed), 0);
    drop(hung);
}
